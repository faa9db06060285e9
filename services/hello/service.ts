import { defineService, type OpContext } from 'lab';

// The hello service: an HTTP server on port 8080 that answers with its host
// name and version. On the mini guest it is busybox httpd under a small
// control script; on CentOS, python3's http.server under a systemd unit.
// Releases sit side by side in /opt/hello/releases/<version>; `current`
// points at the deployed one.

const PORT = 8080;
// Where the lb service listens (services/lb).
const LB_PORT = 80;
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const systemd = (ctx: OpContext) => ctx.host.distro !== 'mini';

async function running(ctx: OpContext): Promise<boolean> {
  const check = systemd(ctx) ? 'systemctl is-active --quiet hello' : '/opt/hello/hello.sh status';
  return (await ctx.run(check, { allowFail: true })).code === 0;
}

export default defineService({
  description: 'answers HTTP on port 8080 with its host name and version',
  role: 'worker',
  versions: ['1.0.0', '1.1.0', '2.0.0'],
  files: ['files/hello-mini.sh', 'templates/index.html.njk', 'templates/hello.service.njk'],
  operations: {
    async deploy(ctx) {
      const release = `/opt/hello/releases/${ctx.version}`;
      await ctx.render('templates/index.html.njk', `${release}/www/index.html`);
      if (systemd(ctx)) {
        await ctx.render('templates/hello.service.njk', '/etc/systemd/system/hello.service', { vars: { port: PORT } });
        await ctx.run('systemctl daemon-reload');
      } else {
        await ctx.put('files/hello-mini.sh', '/opt/hello/hello.sh', { mode: 0o755 });
      }
      // Switch releases in one rename, so a request never sees a half-switched tree.
      await ctx.run(`ln -sfn ${q(release)} /opt/hello/current.new && mv -T /opt/hello/current.new /opt/hello/current`);
      if (await running(ctx)) {
        await ctx.run(systemd(ctx) ? 'systemctl restart hello' : '/opt/hello/hello.sh restart');
        return `version ${ctx.version}, restarted`;
      }
      return `version ${ctx.version}`;
    },

    async start(ctx) {
      if (systemd(ctx)) {
        await ctx.run(`if command -v firewall-cmd >/dev/null && firewall-cmd --state >/dev/null 2>&1; then firewall-cmd -q --permanent --add-port=${PORT}/tcp && firewall-cmd -q --reload; fi`);
        await ctx.run('systemctl enable --now hello');
      } else {
        await ctx.run('/opt/hello/hello.sh start');
        // Back at every boot: the mini guest runs /etc/lab/start.d/* when it comes up.
        await ctx.run('mkdir -p /etc/lab/start.d && ln -sf /opt/hello/hello.sh /etc/lab/start.d/hello');
      }
      return `listening on ${PORT}`;
    },

    async stop(ctx) {
      if (systemd(ctx)) await ctx.run('systemctl disable --now hello');
      else await ctx.run('rm -f /etc/lab/start.d/hello && /opt/hello/hello.sh stop');
    },

    async status(ctx) {
      const r = await ctx.run(systemd(ctx) ? 'systemctl is-active hello' : '/opt/hello/hello.sh status', { allowFail: true });
      if (r.code !== 0) ctx.fail(`not running: ${r.stdout.trim() || r.stderr.trim()}`);
      return r.stdout.trim();
    },

    // From the lab host: HTTP 200 with this host's name and the expected version.
    // With --via lb: through the load balancer, until it hands a request to this host.
    async test(ctx) {
      const expected = `hello from ${ctx.host.name} version ${ctx.version}`;
      if (ctx.via) {
        const tries = 10 * Math.max(1, ctx.peers(ctx.host.role).length);
        const seen = new Set<string>();
        for (let i = 0; i < tries; i++) {
          const r = await ctx.http('/', { host: ctx.via.name, port: LB_PORT, timeout: 10 });
          const body = r.body.trim();
          if (r.status === 200 && body === expected) return `through ${ctx.via.name} after ${i + 1} request(s): ${body}`;
          seen.add(r.status === 200 ? body.replace(/^hello from (\S+).*$/, '$1') : `HTTP ${r.status}`);
          // Every worker's test runs at once: under round robin two testers in step would each only ever
          // be handed the other's worker. A random pause after a miss takes this one out of step.
          await new Promise((resolve) => setTimeout(resolve, 20 + Math.floor(Math.random() * 100)));
        }
        ctx.fail(`${tries} requests through ${ctx.via.name} never reached this host (answered: ${[...seen].join(', ')})`);
      }
      const r = await ctx.http('/', { port: PORT, timeout: 10 });
      const body = r.body.trim();
      if (r.status !== 200) ctx.fail(`HTTP ${r.status} from port ${PORT}: ${body.slice(0, 120)}`);
      if (body !== expected) ctx.fail(`expected "${expected}", got "${body.slice(0, 120)}"`);
      return `200 in ${r.ms} ms: ${body}`;
    },
  },
});
