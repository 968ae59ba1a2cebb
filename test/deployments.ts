import { after } from 'node:test';
import { LocalSupervisor, type SupervisorOptions } from '../src/cluster/supervisor.ts';
import { DEFAULT_COALESCING } from '../src/serving/coalescing-engine.ts';
import { silentLogger } from '../src/util/log.ts';

/**
 * Deployments a test file starts (the supervisor in the test process, every replica a real
 * process on real sockets), each stopped by `stop`, or when the file ends if an assertion
 * failed first. `defaults` apply to every `serve` of the file: port 0, a 2 s deadline, serve's
 * dynamic batching, no log lines, unless set.
 */
export function testDeployments(defaults: Partial<SupervisorOptions> = {}) {
  const running = new Set<LocalSupervisor>();
  after(async () => {
    for (const s of running) await s.stop();
  });
  return {
    async serve(opts: Partial<SupervisorOptions> & Pick<SupervisorOptions, 'modelDir' | 'plan'>): Promise<LocalSupervisor> {
      const sup = new LocalSupervisor({ port: 0, deadlineMs: 2000, coalesce: DEFAULT_COALESCING, log: silentLogger, ...defaults, ...opts });
      running.add(sup);
      await sup.start();
      return sup;
    },
    async stop(sup: LocalSupervisor): Promise<void> {
      await sup.stop();
      running.delete(sup);
    },
  };
}
