import type { Lab } from '../../config/load.js';
import type { Check } from '../../doctor/types.js';
import { firstLine } from '../../util/exec.js';
import { messageOf } from '../../errors.js';
import { VBoxDriver } from './driver.js';

/** What VirtualBox needs here: VBoxManage of a version lab knows. */
export async function virtualboxDoctor(_lab: Lab, _probe: { kernel?: string }): Promise<Check[]> {
  const bin = process.env.LAB_VBOXMANAGE ?? 'VBoxManage';
  try {
    const v = await new VBoxDriver().getVersion();
    const supported = v.major === 7 || (v.major === 6 && v.minor === 1);
    return [
      supported
        ? { name: 'VBoxManage', status: 'ok', detail: `${bin}: VirtualBox ${v.major}.${v.minor}.${v.patch}` }
        : { name: 'VBoxManage', status: 'warn', detail: `VirtualBox ${v.major}.${v.minor}.${v.patch}: lab knows 6.1 and 7.x`, fix: 'install VirtualBox 7' },
    ];
  } catch (e) {
    return [{ name: 'VBoxManage', status: 'fail', detail: `${bin}: ${firstLine(messageOf(e))}`, fix: 'install VirtualBox (virtualbox.org), or set LAB_VBOXMANAGE to its VBoxManage' }];
  }
}

