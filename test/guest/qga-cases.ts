// Requests for the QGA model and the differential test against the real qemu-ga (each a chunk of bytes
// written at once; `time` marks answers whose integer is a time value).
export interface QgaCase {
  send: string | Uint8Array;
  time?: boolean;
}

const s = (send: string, time = false): QgaCase => ({ send, time });

export const QGA_CASES: QgaCase[] = [
  s('{"execute":"guest-ping"}\n'),
  s('{"execute":"guest-ping","id":1}\n'),
  s('{"execute":"guest-ping","id":"abc"}\n'),
  s('{"execute":"guest-sync","arguments":{"id":123}}\n'),
  s('{"execute":"guest-sync-delimited","arguments":{"id":12345678901234}}\n'),
  s('{"execute":"guest-sync","arguments":{"id":9223372036854775807}}\n'),
  s('{"execute":"guest-sync","arguments":{"id":-1}}\n'),
  s('{"execute":"guest-get-time"}\n', true),
  s('{"execute":"guest-get-time","id":-5}\n', true),
  s('{"execute":"guest-get-timezone"}\n'),
  s('{"execute":"guest-info"}\n'),
  s('{"execute":"guest-info","arguments":{}}\n'),
  s('{"execute":"guest-set-time"}\n'),
  s('{"execute":"guest-set-time","arguments":{"time":1}}\n'),
  s('{"execute":"guest-shutdown"}\n'),
  s('{"execute":"guest-file-open","arguments":{"path":"/etc/passwd"}}\n'),
  s('{"execute":"nope"}\n'),
  s('{"execute":"guest-ping","arguments":{"x":1}}\n'),
  s('{"execute":"guest-sync"}\n'),
  s('{"execute":"guest-sync-delimited"}\n'),
  s('{"execute":"guest-sync","arguments":{"id":"abc"}}\n'),
  s('{"execute":"guest-sync","arguments":{"id":1.5}}\n'),
  s('{"execute":"guest-sync","arguments":{"id":true}}\n'),
  s('{"execute":"guest-sync","arguments":{"id":99999999999999999999}}\n'),
  s('{"execute":"guest-sync","arguments":{"id":1e3}}\n'),
  s('{"execute":"guest-sync","arguments":{"id":1,"x":2}}\n'),
  s('[1,2]\n'),
  s('"str"\n'),
  s('42\n'),
  s('{"foo":1}\n'),
  s('{"foo":1,"id":7}\n'),
  s('{"execute":"guest-ping","foo":1}\n'),
  s('{"execute":1}\n'),
  s('{"execute":"guest-ping","arguments":[]}\n'),
  s('{"execute":"guest-ping","arguments":null}\n'),
  s('{"arguments":{}}\n'),
  s('{}\n'),
  s('{"exec-oob":"guest-ping"}\n'),
  s('{"execute":"guest-ping","control":{}}\n'),
  s('{bad json}\n'),
  s('{"a" 1}\n'),
  s('{"a":}\n'),
  s('{,}\n'),
  s('{"execute":"guest-ping",}\n'),
  s('{"execute":"guest-ping" "x"}\n'),
  s('{"execute":"guest-ping","execute":"guest-ping"}\n'),
  s('}\n'),
  s('tru\n'),
  s('@\n'),
  s('{"execute":"a\\qb"}\n'),
  s('{"execute":"gu\\u0065st-ping"}\n'),
  s('{"execute":"guest-ping","id":"\\ud800"}\n'),
  s('{"execute":"guest-ping","id":"\\u00e9\\ud83d\\ude00 \\u0000 \\/"}\n'),
  s("{'execute':'guest-ping'}\n"),
  s('{"execute" : "guest-ping" , "id" : 1.50}\n'),
  s('{"execute":"guest-ping","id":[true,false,null,1.5e10,0.1,1e300,-0.0,"s\\n"]}\n'),
  s('{"execute":"guest-ping","id":{"a":[1],"b":{}}}\n'),
  s('{"execute":"guest-ping"} garbage\n'),
  s('{"execute":"guest-ping"}{"execute":"guest-ping"}'),
  s('{"execute":"guest-'),
  s('ping"}\n'),
  s('[\n'),
  s(']\n'),
  s('{"a":01}\n'),
  { send: Uint8Array.from([0xff, ...new TextEncoder().encode('{"execute":"guest-ping"}\n')]) },
  { send: Uint8Array.from([...new TextEncoder().encode('{"execute":"'), 0xe9, ...new TextEncoder().encode('"}\n')]) },
  { send: Uint8Array.from([...new TextEncoder().encode('{"a":"x'), 0x01, ...new TextEncoder().encode('"}\n')]) },
  s('{"execute":"guest-ping","id":"\\u"}\n'),
  s('{"execute":"guest-ping","id":-}\n'),
  s(`${'['.repeat(1100)}\n`),
  s('{"execute":"guest-ping"}\n'),
];

/** Seeded random messages built from JSON fragments, keys and command names qemu-ga knows, and bytes it does not. */
export function fuzzCases(seed: number, n: number): QgaCase[] {
  let x = seed >>> 0 || 1;
  const rnd = (k: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % k;
  };
  const pick = <T>(a: readonly T[]): T => a[rnd(a.length)]!;
  const names = [
    'guest-ping',
    'guest-sync',
    'guest-sync-delimited',
    'guest-info',
    'guest-get-timezone',
    'guest-set-time',
    'guest-exec',
    'nope',
    '',
  ];
  const keys = ['execute', 'arguments', 'id', 'time', 'x', 'exec-oob', 'control'];
  const value = (d: number): string => {
    switch (rnd(d > 2 ? 6 : 9)) {
      case 0:
        return String(rnd(1000) - 500);
      case 1:
        return pick(['1.5', '-0', '1e3', '99999999999999999999', '9223372036854775808', '0.1', '01', '-']);
      case 2:
        return JSON.stringify(pick([...names, 'é', '\n', 'a"b']));
      case 3:
        return pick(['true', 'false', 'null', 'nul', 'tru']);
      case 4:
        return `'${pick(names)}'`;
      case 5:
        return pick(['"\\u00e9"', '"\\ud800"', '"\\q"', '"\\u12"']);
      case 6:
        return `[${Array.from({ length: rnd(3) }, () => value(d + 1)).join(',')}]`;
      default:
        return obj(d + 1);
    }
  };
  const obj = (d: number): string => {
    const parts = Array.from({ length: rnd(4) }, () => {
      const k = pick(keys);
      const v = k === 'execute' && rnd(3) > 0 ? JSON.stringify(pick(names)) : k === 'arguments' && rnd(2) ? obj(d + 1) : value(d);
      return `${JSON.stringify(k)}${pick([':', ':', ':', ' : ', ''])}${v}`;
    });
    return `{${parts.join(pick([',', ',', ',', ', ', '']))}${rnd(8) === 0 ? ',' : ''}}`;
  };
  const out: QgaCase[] = [];
  for (let i = 0; i < n; i++) {
    let m = rnd(10) === 0 ? value(0) : obj(0);
    if (rnd(12) === 0) m = m.slice(0, rnd(m.length + 1));
    if (rnd(15) === 0) m += pick(['@', '}', ']', 'garbage', '\t']);
    const enc = new TextEncoder().encode(`${m}\n`);
    out.push({ send: rnd(20) === 0 ? Uint8Array.from([pick([0xff, 0xfe, 0x01, 0xe9]), ...enc]) : enc });
  }
  // close anything left open so the next session starts clean
  out.push({ send: `${']'.repeat(4)}${'}'.repeat(4)}\n` });
  return out;
}
