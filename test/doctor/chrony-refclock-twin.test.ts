// chrony.conf's `refclock PHC /dev/ptp0 …` read by the doctor and carried into the twin's sync.refclock.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runDoctor } from '../../src/doctor/doctor.ts';
import { parseChronyConf } from '../../src/doctor/parse.ts';
import { readChrony } from '../../src/doctor/readers.ts';
import { got, missing, recordedSource } from '../../src/doctor/source.ts';
import { planTwin } from '../../src/doctor/twin.ts';
import { parseScenarioText } from '../../src/world/index.ts';

const CONF = '# a KVM guest on its host clock\nrefclock PHC /dev/ptp0 poll 3 dpoll -2 offset 0 nocrossts\nmakestep 1 3\n';

test('chrony.conf refclock lines: driver, device and the numeric options conf.c reads', () => {
  assert.deepEqual(parseChronyConf(CONF).refclocks, [
    { driver: 'PHC', parameter: '/dev/ptp0', poll: 3, dpoll: -2, offset: 0, nocrossts: true },
  ]);
  assert.equal(parseChronyConf('server a\n').refclocks, undefined);
});

async function twinWith(conf: string) {
  const src = recordedSource(join(import.meta.dirname, '../fixtures/doctor/firecracker-pvm'));
  const report = await runDoctor({ source: src });
  const chrony = readChrony({
    ...src,
    readText: (p) => (p === '/etc/chrony/chrony.conf' ? got(conf) : src.readText(p)),
    chronyc: () => missing('chronyc not installed'),
  });
  assert.ok(chrony.ok, chrony.ok ? '' : chrony.reason);
  return planTwin({ ...report, ntp: { ...report.ntp, clients: got(['chronyd']), chrony } });
}

test('a machine whose chronyd reads the ptp_kvm PHC gets a twin with sync.refclock and no servers, and it validates', async () => {
  const plan = await twinWith(CONF);
  const s = parseScenarioText(plan.yaml, 'twin');
  const sync = s.vms[0]!.sync;
  assert.equal(sync.method, 'chrony');
  assert.equal(sync.servers, undefined);
  assert.deepEqual(sync.refclock, {
    phc: '/dev/ptp0',
    poll: 3,
    dpoll: -2,
    offset: 0,
    delay: 1e-9,
    precision: 0,
    filter: 64,
    nocrossts: true,
  });
  assert.deepEqual(sync.makestep, [1, 3]);
  assert.ok(plan.choices.some((c) => c.key === 'vms[0].sync.refclock' && /refclock PHC \/dev\/ptp0/.test(c.why)));
});

test('a PHC other than /dev/ptp0 is a gap, not a refclock', async () => {
  const plan = await twinWith('server ntp1 iburst\nrefclock PHC /dev/ptp1\n');
  const s = parseScenarioText(plan.yaml, 'twin');
  assert.equal(s.vms[0]!.sync.refclock, undefined);
  assert.ok(
    plan.gaps.some((g) => /refclock PHC \/dev\/ptp1/.test(g)),
    JSON.stringify(plan.gaps),
  );
});
