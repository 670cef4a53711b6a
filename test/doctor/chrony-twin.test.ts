// A machine running chronyd gets a chrony twin: its chrony.conf (servers, iburst, polling, makestep, rtcsync)
// and `chronyc -n tracking` (root delay → path) carried into the scenario. Fixture: real chrony 4.3 output.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runDoctor } from '../../src/doctor/doctor.ts';
import { parseChronyConf, parseChronycSources, parseChronycTracking } from '../../src/doctor/parse.ts';
import { readChrony } from '../../src/doctor/readers.ts';
import { got, recordedSource } from '../../src/doctor/source.ts';
import { planTwin } from '../../src/doctor/twin.ts';
import { parseScenarioText } from '../../src/world/index.ts';

const DIR = join(import.meta.dirname, '../fixtures/chrony/loopback');
const text = (f: string) => readFileSync(join(DIR, f), 'utf8');

test('chronyc -n tracking and sources as chrony 4.3 prints them', () => {
  const t = parseChronycTracking(text('chronyc-tracking.txt'))!;
  assert.deepEqual(t, {
    referenceId: '7F000001 (127.0.0.1)',
    stratum: 2,
    systemTimeS: 0.000001348, // "seconds fast of NTP time": +
    rmsOffsetS: 0.000000039,
    frequencyPpm: 0.003, // "ppm fast": +
    rootDelayS: 0.000005793,
    updateIntervalS: 2,
    leapStatus: 'Normal',
  });
  assert.equal(
    parseChronycTracking('System time : 0.5 seconds slow of NTP time\nReference ID : x\nFrequency : 12.5 ppm slow\n')!.frequencyPpm,
    -12.5,
  );
  // "^* 127.0.0.1  1  4  17 …": a server (^), selected (*), stratum 1, poll 2^4, reach octal 17 = 15
  assert.deepEqual(parseChronycSources(text('chronyc-sources.txt')), [
    { mode: '^', state: '*', name: '127.0.0.1', stratum: 1, poll: 4, reach: 15 },
  ]);
});

test('chrony.conf: sources with their options, makestep, maxslewrate, rtcsync; comments and other directives ignored', () => {
  const c = parseChronyConf(
    '# Debian\npool 2.debian.pool.ntp.org iburst\nserver ntp1 minpoll 4 maxpoll 8 ! fast\nmakestep 1.0 3\nmaxslewrate 500\nrtcsync\nsourcedir /run/chrony-dhcp\nkeyfile /etc/chrony/chrony.keys\n',
  );
  assert.deepEqual(c, {
    sources: [
      { directive: 'pool', name: '2.debian.pool.ntp.org', iburst: true },
      { directive: 'server', name: 'ntp1', iburst: false, minpoll: 4, maxpoll: 8 },
    ],
    makestep: [1, 3],
    maxslewrate: 500,
    rtcsync: true,
    elsewhere: ['sourcedir /run/chrony-dhcp'],
  });
});

test('the twin of a machine running chronyd uses chrony with its servers and settings, and validates', async () => {
  const src = recordedSource(join(import.meta.dirname, '../fixtures/doctor/firecracker-pvm'));
  const report = await runDoctor({ source: src });
  // the recorded machine, with this chronyd's configuration and reports where the doctor reads them
  const chrony = readChrony({
    ...src,
    readText: (p) => (p === '/etc/chrony/chrony.conf' ? got(text('etc/chrony/chrony.conf')) : src.readText(p)),
    chronyc: (report) => got(text(`chronyc-${report}.txt`)),
  });
  assert.ok(chrony.ok, chrony.ok ? '' : chrony.reason);
  const withChrony = { ...report, ntp: { ...report.ntp, clients: got(['chronyd']), chrony } };
  const plan = planTwin(withChrony);
  const s = parseScenarioText(plan.yaml, 'twin');
  const sync = s.vms[0]!.sync;
  assert.equal(sync.method, 'chrony');
  assert.deepEqual(sync.servers, ['127.0.0.1']);
  assert.deepEqual([sync.iburst, sync.minpoll, sync.maxpoll, sync.makestep, sync.rtcsync], [true, 4, 6, [1, 3], true]);
  // half of the recorded root delay 0.000005793 s, to the µs: 3 µs each way
  assert.equal(s.ntp_servers[0]!.path.delay, 3_000n);
  assert.ok(
    plan.choices.some((c) => c.key === 'ntp_servers[].path.delay' && /root delay/.test(c.why)),
    JSON.stringify(plan.choices),
  );
});
