import { defineService, type OpContext } from 'lab';

// The load balancer: nginx on port 80 farming requests out to the live
// workers of its environment (their port 8080, where hello listens) and
// relaying the answers. Its upstream list is rendered from the inventory's
// live hosts; `reconfigure` re-renders it whenever they change (lab env
// start-all, start-worker, the monitor) and reloads nginx without dropping
// connections. On the mini guest nginx comes from Debian's package, built in;
// on CentOS from the distribution (kickstart %packages).

const LISTEN = 80;
const UPSTREAM_ROLE = 'worker';
const UPSTREAM_PORT = 8080;
const HEALTH_PATH = '/.lab-health';
const mini = (ctx: OpContext) => ctx.host.distro === 'mini';
const CONF = (ctx: OpContext) => (mini(ctx) ? '/opt/lb/nginx.conf' : '/etc/nginx/nginx.conf');
const control = (ctx: OpContext, action: string) => (mini(ctx) ? `/opt/lb/lb.sh ${action}` : `systemctl ${action} nginx`);

/** Render the config from the live workers; true when it changed. */
async function render(ctx: OpContext): Promise<{ changed: boolean; upstreams: string[] }> {
  const upstreams = ctx.peers(UPSTREAM_ROLE).sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  const vars = { upstreams, role: UPSTREAM_ROLE, port: UPSTREAM_PORT, listen: LISTEN, healthPath: HEALTH_PATH };
  await ctx.render('templates/nginx.conf.njk', `${CONF(ctx)}.new`, { vars });
  const same = await ctx.run(`cmp -s ${CONF(ctx)}.new ${CONF(ctx)}`, { allowFail: true });
  if (same.code === 0) {
    await ctx.run(`rm -f ${CONF(ctx)}.new`);
    return { changed: false, upstreams: upstreams.map((u) => u.name) };
  }
  // The old config is kept beside it until the new one passes nginx -t.
  await ctx.run(`cp -p ${CONF(ctx)} ${CONF(ctx)}.old 2>/dev/null; mv ${CONF(ctx)}.new ${CONF(ctx)}`);
  const check = await ctx.run(mini(ctx) ? `nginx -e /var/log/lb-nginx.log -t -q -c ${CONF(ctx)}` : 'nginx -t -q', { allowFail: true });
  if (check.code !== 0) {
    await ctx.run(`[ -f ${CONF(ctx)}.old ] && mv ${CONF(ctx)}.old ${CONF(ctx)}`, { allowFail: true });
    ctx.fail(`nginx refused the rendered config: ${check.stderr.trim().split('\n').pop()}`);
  }
  return { changed: true, upstreams: upstreams.map((u) => u.name) };
}

const list = (u: string[]) => (u.length ? u.join(' ') : 'none');

export default defineService({
  description: 'nginx on port 80 balancing over the live workers of its environment',
  role: 'lb',
  versions: ['1'],
  files: ['templates/nginx.conf.njk', 'files/lb-mini.sh'],
  operations: {
    async deploy(ctx) {
      if (mini(ctx)) {
        await ctx.put('files/lb-mini.sh', '/opt/lb/lb.sh', { mode: 0o755 });
        await ctx.run('mkdir -p /var/lib/lb');
      }
      const r = await render(ctx);
      if (r.changed && (await ctx.run(control(ctx, 'status'), { allowFail: true })).code === 0) await ctx.run(control(ctx, 'reload'));
      return `upstreams: ${list(r.upstreams)}`;
    },

    async start(ctx) {
      if (mini(ctx)) {
        await ctx.run('/opt/lb/lb.sh start');
        await ctx.run('mkdir -p /etc/lab/start.d && ln -sf /opt/lb/lb.sh /etc/lab/start.d/lb');
      } else {
        // SELinux keeps nginx from connecting out unless told; firewalld from being reached.
        await ctx.run('setsebool -P httpd_can_network_connect 1 2>/dev/null || true');
        await ctx.run(`if command -v firewall-cmd >/dev/null && firewall-cmd --state >/dev/null 2>&1; then firewall-cmd -q --permanent --add-port=${LISTEN}/tcp && firewall-cmd -q --reload; fi`);
        await ctx.run('systemctl enable --now nginx');
      }
      return `listening on ${LISTEN}`;
    },

    async stop(ctx) {
      if (mini(ctx)) await ctx.run('rm -f /etc/lab/start.d/lb && /opt/lb/lb.sh stop');
      else await ctx.run('systemctl disable --now nginx');
    },

    async status(ctx) {
      const r = await ctx.run(control(ctx, 'status'), { allowFail: true });
      if (r.code !== 0) ctx.fail(`not running: ${r.stdout.trim() || r.stderr.trim()}`);
      return r.stdout.trim();
    },

    // The live workers changed: render again and reload (nothing when the list is the same).
    async reconfigure(ctx) {
      const r = await render(ctx);
      if (!r.changed) return { note: `unchanged: ${list(r.upstreams)}`, changed: false };
      if ((await ctx.run(control(ctx, 'status'), { allowFail: true })).code === 0) await ctx.run(control(ctx, 'reload'));
      return { note: `reloaded: ${list(r.upstreams)}`, changed: true };
    },

    // The balancer's own health, which the monitor checks: nginx answers on its port.
    // A balancer is not replaced because its workers fail; that is what \`test\` reports.
    async health(ctx) {
      const r = await ctx.http(HEALTH_PATH, { port: LISTEN, timeout: 5 });
      if (r.status !== 200 || r.body.trim() !== 'lb ok') ctx.fail(`HTTP ${r.status} from ${HEALTH_PATH} on port ${LISTEN}: ${r.body.trim().slice(0, 80)}`);
      return `nginx answers in ${r.ms} ms`;
    },

    // From the lab host: requests through the balancer reach every live worker.
    async test(ctx) {
      const workers = ctx.peers(UPSTREAM_ROLE).map((w) => w.name);
      if (workers.length === 0) ctx.fail(`no live ${UPSTREAM_ROLE} hosts in ${ctx.host.env} to balance over`);
      const seen = new Map<string, number>();
      for (let i = 0; i < 4 * workers.length && seen.size < workers.length; i++) {
        const r = await ctx.http('/', { port: LISTEN, timeout: 10 });
        if (r.status !== 200) ctx.fail(`HTTP ${r.status} from port ${LISTEN}: ${r.body.trim().slice(0, 120)}`);
        const name = /^hello from (\S+)/.exec(r.body)?.[1] ?? r.body.trim().slice(0, 40);
        seen.set(name, (seen.get(name) ?? 0) + 1);
      }
      const missing = workers.filter((w) => !seen.has(w));
      if (missing.length) ctx.fail(`never reached ${missing.join(', ')} (answered: ${[...seen.keys()].join(', ')})`);
      return `reached ${[...seen].map(([n, c]) => `${n} x${c}`).join(', ')}`;
    },
  },
});
