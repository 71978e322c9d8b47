#!/usr/bin/env bash
# run.sh [SECONDS] - build the libFuzzer targets with clang in build-fuzz/
# (configured on first use) and run each for SECONDS (default 30) on its
# corpus under build-fuzz/corpus/<target>, seeded with a few well-formed
# inputs. SECONDS is per target: CI (.ci/run: make fuzz FUZZ_SECONDS=20)
# runs the 9 default targets for 20 s each, 180 s of fuzzing in all (plus
# the build), inside its 6-minute budget; a new target adds 20 s. Exits nonzero if any target finds a crash, a leak or a failed
# check; the reproducer is left in build-fuzz/artifacts/.
#
# Environment: BUILD_FUZZ (default build-fuzz), FUZZ_TARGETS (default all),
# FUZZ_ARGS (extra libFuzzer flags, e.g. -fork=4).
# Reproduce a finding: build-fuzz/tests/fuzz/<target> build-fuzz/artifacts/<file>
set -euo pipefail
cd "$(dirname "$0")/../.."

secs=${1:-30}
build=${BUILD_FUZZ:-build-fuzz}
targets=${FUZZ_TARGETS:-"fuzz_virtq fuzz_virtio_mmio fuzz_virtio_load fuzz_virtio_dev fuzz_api fuzz_http fuzz_config fuzz_kernel fuzz_mmds fuzz_fuse"}

if ! command -v clang >/dev/null; then
  echo "run.sh: clang is needed for libFuzzer (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
if [ ! -f "$build/build.ninja" ]; then
  # -Dwerror=false: the fuzz build is not the warnings gate (the gcc builds
  # are); a clang-only warning elsewhere must not stop fuzzing.
  CC=clang meson setup "$build" -Dfuzz=true -Dwerror=false
else
  meson configure "$build" -Dfuzz=true >/dev/null
fi
ninja -C "$build" $(for t in $targets; do echo "tests/fuzz/$t"; done)

# Seeds: well-formed inputs the fuzzer mutates from, so it starts inside the
# ring-walking code instead of having to discover the layout first.
seed() {
  python3 - "$1" "$2" <<'EOF'
import gzip, json, lzma, os, struct, sys
target, out = sys.argv[1], sys.argv[2]

def desc(addr, ln, flags, nxt):
    return struct.pack('<QIHH', addr, ln, flags, nxt)

NEXT, WRITE, INDIRECT = 1, 2, 4

def put(img, off, b):
    img[off:off + len(b)] = b

def virtq_seed(size_log2, flags, start, heads, table_chain=False):
    size = 1 << size_log2
    img = bytearray(0xc00)
    put(img, 0x000, desc(0x800, 16, NEXT, 1))
    put(img, 0x010, desc(0x900, 32, WRITE, 0))
    put(img, 0x020, desc(0xa00, 32, INDIRECT, 0))
    put(img, 0x030, desc(0x2000, 64, WRITE, 0))
    put(img, 0xa00, desc(0x810, 8, NEXT, 1))
    put(img, 0xa10, desc(0x2040, 8, WRITE, 0))
    if table_chain:  # every descriptor of the table in one chain
        for i in range(size):
            put(img, 16 * i, desc(0x800 + i, 1, NEXT if i + 1 < size else WRITE, i + 1))
        heads = [0]
    put(img, 0x400, struct.pack('<HH', 0, (start + len(heads)) & 0xffff))
    for k, h in enumerate(heads):
        put(img, 0x404 + 2 * ((start + k) % size), struct.pack('<H', h))
    hdr = struct.pack('<BBHBBHQ', size_log2, flags, start, 16, 2, 0, 0)
    return hdr + bytes(img)

def mmio_op(kind, a=0, b=0, c=0, v=0):
    return struct.pack('<BBBBI', kind, a, b, c, v)

def mmio_seed(manual):
    img = bytearray(0xc00)
    put(img, 0x000, desc(0x1000, 64, WRITE, 0))
    put(img, 0x010, desc(0x1100, 32, INDIRECT, 0))
    put(img, 0x020, desc(0x1300, 8, NEXT, 3))
    put(img, 0x030, desc(0x10000, 8, WRITE, 0))
    put(img, 0x800, struct.pack('<HHHH', 0, 3, 0, 1))
    put(img, 0x808, struct.pack('<H', 2))
    ops = b''
    # The indirect table, written into RAM by pokes (op 4).
    for i, (a, l, f, n) in enumerate([(0x1200, 16, NEXT, 1), (0x10010, 16, WRITE, 0)]):
        d = desc(a, l, f, n)
        for k in range(0, 16, 4):
            ops += mmio_op(4, (0x1100 + 16 * i + k) & 0xff, (0x1100 + 16 * i + k) >> 8, 0,
                           struct.unpack('<I', d[k:k + 4])[0])
    if manual:  # register by register (offsets / 4 for op 2)
        w = lambda reg, val: mmio_op(2, reg // 4, 0, 0, val)
        ops += w(0x70, 1) + w(0x70, 3)
        ops += w(0x24, 0) + w(0x20, (1 << 28) | (1 << 29)) + w(0x24, 1) + w(0x20, 1)
        ops += w(0x70, 11) + w(0x30, 0) + w(0x38, 16)
        ops += w(0x80, 0) + w(0x84, 0) + w(0x90, 0x800) + w(0x94, 0)
        ops += w(0xa0, 0xa00) + w(0xa4, 0) + w(0x44, 1) + w(0x70, 15)
        ops += w(0x50, 0) + mmio_op(3, 0x60 // 4) + w(0x64, 1)
    else:
        ops += mmio_op(5, 3, 3) + mmio_op(6, 0, 3)
    ops += mmio_op(4, 0x02, 0x08, 0, 4 | (1 << 16))  # avail idx 4, ring[0] = 1
    ops += mmio_op(4, 0x0a, 0x08, 0, 1)              # ring[3] = 1
    ops += mmio_op(6, 0, 3) + mmio_op(3, 0x60 // 4) + mmio_op(2, 0x64 // 4, 0, 0, 3)
    ops += mmio_op(6, 1) + mmio_op(0, 0xfc, 0, 2) + mmio_op(7, 0)
    return struct.pack('<H', len(img)) + bytes(img) + ops

def load_seed(status, ready, event_idx):
    # RAM: one avail entry (head 0) for a 16-byte writable buffer at 0x1000.
    img = bytearray(0xc00)
    put(img, 0x000, desc(0x1000, 16, WRITE, 0))
    put(img, 0x800, struct.pack('<HHH', 0, 1, 0))
    feats = (1 << 32) | (1 << 28) | ((1 << 29) if event_idx else 0)
    # The section virtio_mmio_save() writes for virtio-rng: transport
    # (selects, InterruptStatus), features, status, generation, one queue.
    sec = struct.pack('<IIII', 0, 0, 0, 0)
    sec += struct.pack('<QQBIH', (1 << 32) | (1 << 29) | (1 << 28), feats, status, 0, 1)
    sec += struct.pack('<HBQQQBBHHHB', 16, ready, 0, 0x800, 0xa00, event_idx, 1, 0, 0, 0, 0)
    return struct.pack('<H', len(img)) + bytes(img) + sec

def api_req(route, method, body='', raw_path=None):
    # fuzz_api's request: route index (>= the path table: a raw path in the
    # body up to '\n'), method (0 PUT, 1 PATCH, 2 GET; top bits: len & 3),
    # len >> 2, body.
    b = body.encode()
    if raw_path is not None:
        route, b = 255, raw_path.encode() + b'\n' + b
    m = {'PUT': 0, 'PATCH': 1, 'GET': 2, 'DELETE': 5}[method] | ((len(b) & 3) << 6)
    return bytes([route, m, len(b) >> 2]) + b

# fuzz_api's path table (tests/fuzz/fuzz_api.c), by name.
API = {p: i for i, p in enumerate([
    '/', '/version', '/machine-config', '/boot-source', '/drives/rootfs', '/drives/scratch',
    '/drives/', '/network-interfaces/eth0', '/network-interfaces/eth1', '/vsock', '/balloon',
    '/balloon/statistics', '/entropy', '/logger', '/metrics', '/actions', '/vm', '/vm/config',
    '/vcpus', '/cpu-config', '/mmds', '/mmds/config', '/snapshot/create', '/snapshot/load',
    '/serial', '/pmem/p0', '/hotplug/memory', '/shared-dirs/src'])}
RL = '{"bandwidth": {"size": 1000, "refill_time": 100}, "ops": {"size": 10, "refill_time": 1000}}'
API_CONFIG = {
    'machine-config': {'vcpu_count': 2, 'mem_size_mib': 256, 'track_dirty_pages': True},
    'boot-source': {'kernel_image_path': '/bin/sh', 'boot_args': 'console=ttyS0 reboot=k'},
    'drives': [{'drive_id': 'rootfs', 'path_on_host': '/bin/sh', 'is_root_device': True,
                'is_read_only': True}],
    'network-interfaces': [{'iface_id': 'eth0', 'host_dev_name': 'tap0',
                            'guest_mac': '06:00:ac:10:00:02'}],
    'vsock': {'guest_cid': 3, 'uds_path': '/tmp/v.sock'},
    'balloon': {'amount_mib': 16, 'deflate_on_oom': True, 'stats_polling_interval_s': 1},
    'pmem': [{'id': 'p0', 'path_on_host': '/bin/sh', 'read_only': True, 'rate_limiter': {
        'ops': {'size': 10, 'refill_time': 1000}}}],
    'entropy': {},
    'shared-dirs': [{'tag': 'src', 'host_path': '/tmp', 'read_only': True}],
    'logger': {'log_path': '/tmp/arcvm-fuzz-never-created', 'level': 'Debug'},
}

def api_seed(cfg=None):
    out = b''
    if cfg is not None:
        c = json.dumps(cfg).encode()
        out = struct.pack('<H', len(c)) + c
    return out

def sstr(x):  # snap_put_str: u16 length, bytes (NULL and "" alike)
    b = (x or '').encode()
    return struct.pack('<H', len(b)) + b

def limiter(size=0, burst=0, refill=0):  # bandwidth, then ops
    return struct.pack('<QQQ', size, burst, refill) + struct.pack('<QQQ', 0, 0, 0)

def config_section():
    # config_save() (vmm/config_state.c) of a VM with one disk, one NIC of
    # each kind, vsock and a balloon.
    s = sstr('/k') + sstr('/i') + sstr('console=ttyS0') + struct.pack('<BIQBBBB', 0, 2, 256 << 20,
                                                                      0, 1, 0, 1)
    s += limiter(1000, 0, 100)
    s += struct.pack('<I', 1) + sstr('/d.img') + b'\x01' + sstr('rootfs') + limiter()
    s += struct.pack('<I', 2)
    s += b'\x00' + sstr('tap0') + bytes([6, 0, 0xac, 0x10, 0, 2]) + b'\x01' + struct.pack('<I', 0)
    s += sstr('eth0') + limiter() + limiter(100, 10, 1000)
    s += b'\x01' + sstr('') + bytes(6) + b'\x00' + struct.pack('<I', 1)
    s += struct.pack('<BIHH', 0, 0x7f000001, 8080, 80) + sstr('') + limiter() + limiter()
    s += struct.pack('<BI', 1, 3) + sstr('/tmp/v.sock')
    s += struct.pack('<BIBIB', 1, 64, 1, 5, 1)
    return s

def elf_kernel(pvh=True, nseg=1):
    # A minimal x86-64 ET_EXEC: program headers, then a PVH note (Xen,
    # XEN_ELFNOTE_PHYS32_ENTRY) and the segments' bytes.
    phnum = nseg + (1 if pvh else 0)
    phoff = 64
    data_off = phoff + 56 * phnum
    note = struct.pack('<III', 4, 4, 18) + b'Xen\x00' + struct.pack('<I', 0x1000000)
    body = note if pvh else b''
    ph = b''
    if pvh:
        ph += struct.pack('<IIQQQQQQ', 4, 4, data_off, 0, 0, len(note), len(note), 4)
    for i in range(nseg):
        off = data_off + len(body)
        seg = bytes([0x90] * 64)
        body += seg
        ph += struct.pack('<IIQQQQQQ', 1, 5, off, 0xffffffff81000000 + i * 0x1000,
                          0x1000000 + i * 0x1000, len(seg), 0x1000, 0x1000)
    eh = b'\x7fELF' + bytes([2, 1, 1]) + bytes(9)
    eh += struct.pack('<HHIQQQIHHHHHH', 2, 62, 1, 0x1000200, phoff, 0, 0, 64, 56, phnum, 64, 0, 0)
    return eh + ph + body

def bzimage(payload):
    # Boot protocol 2.15 header (Documentation/arch/x86/boot.rst): one setup
    # sector after the boot sector, then the protected-mode part holding
    # @payload at offset 0x40.
    setup_sects = 1
    pm = bytes(0x40) + payload
    pm += bytes((-len(pm)) % 16)
    img = bytearray(512 * (setup_sects + 1))
    img[0x1f1] = setup_sects
    img[0x1f4:0x1f8] = struct.pack('<I', len(pm) // 16)
    img[0x1fe:0x200] = b'\x55\xaa'
    img[0x201] = 0x6a  # header length past 0x202
    img[0x202:0x206] = b'HdrS'
    img[0x206:0x208] = struct.pack('<H', 0x020f)
    img[0x211] = 1  # LOADED_HIGH
    img[0x22c:0x230] = struct.pack('<I', 0x7fffffff)
    img[0x234] = 1  # relocatable
    img[0x236:0x238] = struct.pack('<H', 1)  # XLF_KERNEL_64
    img[0x238:0x23c] = struct.pack('<I', 2048)
    img[0x248:0x250] = struct.pack('<II', 0x40, len(payload))
    img[0x258:0x260] = struct.pack('<Q', 0x1000000)
    img[0x260:0x264] = struct.pack('<I', 0x400000)
    return bytes(img) + pm

def dev_seed(dev, feats, qlog, chains, bufs, ops):
    # fuzz_virtio_dev: device, feature byte, queue size log2, RAM image,
    # operations. @chains: {queue: [[(addr, len, write), ...] per chain]},
    # laid out in the queue's table at DESC(q) and made available in order.
    img = bytearray(0x3000)  # region 0 (8 KiB), then region 1 from 0x2000
    def gpa_off(g):
        return g if g < 0x2000 else g - 0x10000 + 0x2000
    for q, cl in chains.items():
        d = 0
        heads = []
        for chain in cl:
            heads.append(d)
            for k, (a, l, w) in enumerate(chain):
                last = k + 1 == len(chain)
                put(img, 0x200 * q + 16 * d,
                    desc(a, l, (WRITE if w else 0) | (0 if last else NEXT), d + 1))
                d += 1
        put(img, 0x200 * q + 0x100, struct.pack('<HH', 0, len(heads)))
        for k, h in enumerate(heads):
            put(img, 0x200 * q + 0x104 + 2 * k, struct.pack('<H', h))
    for g, b in bufs.items():
        put(img, gpa_off(g), b)
    return bytes([dev, feats, qlog]) + struct.pack('<H', len(img)) + bytes(img) + ops

def dop(kind, a=0, b=0, c=0, v=0):
    return struct.pack('<BBBBI', kind, a, b, c, v)

def host_in(a, payload, c_hi=0):
    # op 5: length in b << 4 | c & 15, the payload after it padded to 8
    n = len(payload)
    return dop(5, a, n >> 4, (c_hi << 4) | (n & 15)) + payload + bytes((-n) % 8)

def vsock_hdr(op, src_port, dst_port, ln=0):
    return struct.pack('<QQIIIHHIII', 3, 2, src_port, dst_port, ln, 1, op, 0, 65536, 0)

seeds = {}
if target == 'fuzz_virtio_load':
    seeds['live'] = load_seed(15, 1, 1)
    seeds['live-noevent'] = load_seed(15, 1, 0)
    seeds['negotiating'] = load_seed(11, 0, 1)
elif target == 'fuzz_api':
    boot = [api_req(API['/machine-config'], 'PUT', '{"vcpu_count": 2, "mem_size_mib": 256}'),
            api_req(API['/boot-source'], 'PUT', json.dumps(API_CONFIG['boot-source'])),
            api_req(API['/drives/rootfs'], 'PUT', json.dumps(API_CONFIG['drives'][0])),
            api_req(API['/network-interfaces/eth0'], 'PUT',
                    json.dumps(API_CONFIG['network-interfaces'][0])),
            api_req(API['/vsock'], 'PUT', json.dumps(API_CONFIG['vsock'])),
            api_req(API['/balloon'], 'PUT', json.dumps(API_CONFIG['balloon'])),
            api_req(API['/entropy'], 'PUT', '{"rate_limiter": ' + RL + '}'),
            api_req(API['/shared-dirs/src'], 'PUT', json.dumps(API_CONFIG['shared-dirs'][0])),
            api_req(API['/logger'], 'PUT', json.dumps(API_CONFIG['logger'])),
            api_req(API['/metrics'], 'PUT', '{"metrics_path": "/tmp/arcvm-fuzz-never-created"}'),
            api_req(API['/vm/config'], 'GET')]
    live = [api_req(API['/actions'], 'PUT', '{"action_type": "InstanceStart"}'),
            api_req(API['/drives/rootfs'], 'PATCH', '{"drive_id": "rootfs", "rate_limiter": ' +
                    RL + '}'),
            api_req(API['/network-interfaces/eth0'], 'PATCH',
                    '{"iface_id": "eth0", "rx_rate_limiter": ' + RL + '}'),
            api_req(API['/balloon'], 'PATCH', '{"amount_mib": 8}'),
            api_req(API['/balloon/statistics'], 'PATCH', '{"stats_polling_interval_s": 2}'),
            api_req(API['/vm'], 'PATCH', '{"state": "Paused"}'),
            api_req(API['/snapshot/create'], 'PUT',
                    '{"snapshot_type": "Full", "snapshot_path": "/s", "mem_file_path": "/m"}'),
            api_req(API['/actions'], 'PUT', '{"action_type": "FlushMetrics"}'),
            api_req(API['/'], 'GET'), api_req(API['/vcpus'], 'GET'),
            api_req(API['/balloon/statistics'], 'GET')]
    seeds['boot'] = b'\x00' + b''.join(boot + live)
    seeds['config'] = b'\x01' + api_seed(API_CONFIG) + b''.join(live)
    seeds['load'] = b'\x00' + api_req(API['/snapshot/load'], 'PUT', json.dumps(
        {'snapshot_path': '/s', 'mem_backend': {'backend_type': 'File', 'backend_path': '/m'},
         'resume_vm': True, 'network_overrides': [{'iface_id': 'eth0', 'host_dev_name': 't1'}]}))
    seeds['raw'] = b'\x02' + api_req(0, 'PUT', '{"action_type": "SendCtrlAltDel"}',
                                      raw_path='/actions/') + api_req(
        0, 'GET', raw_path='/drives/x/y') + api_req(API['/pmem/p0'], 'DELETE')
    cpu = {'kvm_capabilities': ['!56', '171'],
           'cpuid_modifiers': [{'leaf': '0x1', 'subleaf': '0x0', 'flags': 0, 'modifiers': [
               {'register': 'ecx', 'bitmap': '0b0xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'},
               {'register': 'eax', 'bitmap': '0b1_0x'}]}],
           'msr_modifiers': [{'addr': '0x10a', 'bitmap': '0b' + '0' * 64}]}
    seeds['cpu-serial'] = b'\x01' + api_seed(
        {'cpu-config': cpu, 'serial': {'serial_out_path': '/tmp/arcvm-fuzz-never-created'}}) + \
        api_req(API['/cpu-config'], 'PUT', json.dumps(cpu)) + \
        api_req(API['/serial'], 'PUT', '{"serial_out_path": "/tmp/arcvm-fuzz-never-created"}') + \
        api_req(API['/vm/config'], 'GET')
elif target == 'fuzz_http':
    body = b'{"vcpu_count": 2, "mem_size_mib": 256}'
    seeds['put'] = (b'PUT /machine-config HTTP/1.1\r\nHost: localhost\r\n'
                    b'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n' % len(body)) + body
    seeds['keepalive'] = (b'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
                          b'PATCH /vm HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n'
                          b'{"state": "Paused"}\n')
    seeds['chunked'] = (b'PUT /actions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
                        b'1f\r\n{"action_type": "FlushMetrics"}\r\n0\r\n\r\n')
    seeds['http10'] = b'GET /vm/config?x=1#f HTTP/1.0\r\n\r\n'
elif target == 'fuzz_config':
    for i, spec in enumerate(['/d.img,ro,id=rootfs', 'tap=tap0,mac=06:00:ac:10:00:02,id=eth0',
                              'cid=3,uds=/tmp/v.sock', '256M,deflate-on-oom,stats=5,free-page-reporting',
                              '1GiB', 'user,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp::53-:53',
                              '0-3,6', '/d.img,rw']):
        sel = [0, 1, 2, 3, 4, 1, 4, 0][i]
        seeds['spec%d' % i] = bytes([sel]) + spec.encode()
    seeds['state'] = b'\x05' + config_section()
elif target == 'fuzz_kernel':
    k = elf_kernel()
    xz = lzma.compress(k, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32,
                       filters=[{'id': lzma.FILTER_X86}, {'id': lzma.FILTER_LZMA2}])
    seeds['bz-gzip'] = b'\x00' + bzimage(gzip.compress(k, mtime=0))
    seeds['bz-xz'] = b'\x00' + bzimage(xz)
    seeds['elf-pvh'] = b'\x01' + k
    seeds['elf-2seg'] = b'\x01' + elf_kernel(pvh=False, nseg=2)
    seeds['xz'] = b'\x02' + xz
    seeds['gzip-small-bound'] = b'\x82' + gzip.compress(k * 80, mtime=0)
elif target == 'fuzz_virtio_dev':
    KICK = lambda q: dop(0, q)
    RUN = dop(3, 3)
    DRAIN = dop(6)
    blk_hdr = lambda t, sector=0: struct.pack('<IIQ', t, 0, sector)
    seeds['blk'] = dev_seed(0, 0x03, 3, {0: [
        [(0x1800, 16, 0), (0x10000, 512, 1), (0x1900, 1, 1)],
        [(0x1810, 16, 0), (0x10200, 512, 0), (0x1901, 1, 1)],
        [(0x1820, 16, 0), (0x10400, 20, 1), (0x1902, 1, 1)],
        [(0x1830, 16, 0), (0x10500, 16, 0), (0x1903, 1, 1)],
        [(0x1840, 16, 0), (0x1904, 1, 1)]]},
        {0x1800: blk_hdr(0, 8) + blk_hdr(1, 2) + blk_hdr(8) + blk_hdr(13) + blk_hdr(4),
         0x10500: struct.pack('<QII', 0, 8, 0)},
        KICK(0) + RUN + RUN + KICK(0) + RUN)
    frame = bytes([0xff] * 6) + bytes([6, 0, 0xac, 0x10, 0, 3]) + b'\x08\x06' + bytes(46)
    seeds['net'] = dev_seed(1, 0x83, 3, {
        0: [[(0x10000, 2048, 1)], [(0x10800, 2048, 1)]],
        1: [[(0x1800, 12, 0), (0x1900, len(frame), 0)]]},
        {0x1900: frame},
        KICK(1) + RUN + DRAIN + KICK(0) + host_in(0, bytes(12) + frame) + RUN + RUN + KICK(0))
    seeds['net-bare'] = dev_seed(1, 0x01, 2, {
        0: [[(0x10000, 2048, 1)]], 1: [[(0x1900, len(frame), 0)]]},
        {0x1900: frame}, KICK(0) + KICK(1) + RUN + DRAIN + host_in(0, frame) + RUN)
    seeds['vsock'] = dev_seed(2, 0x03, 3, {
        0: [[(0x10000, 44 + 256, 1)], [(0x10200, 44 + 256, 1)], [(0x10400, 300, 1)]],
        1: [[(0x1800, 44, 0)], [(0x1840, 44, 0), (0x1900, 5, 0)], [(0x1880, 44, 0)]],
        2: [[(0x10800, 8, 1)]]},
        {0x1800: vsock_hdr(1, 1000, 52), 0x1840: vsock_hdr(5, 1000, 52, 5),
         0x1880: vsock_hdr(3, 1000, 52), 0x1900: b'hello'},
        KICK(0) + KICK(2) + KICK(1) + RUN + host_in(8, b'') + host_in(0, b'from host') + RUN +
        host_in(4, b'', 0) + dop(5, 4, 0, 0x0b) + RUN + KICK(0) + RUN + DRAIN)
    pfns = struct.pack('<IIII', 0x10, 0x1, 0x12345, 0x10)
    stats = b''.join(struct.pack('<HQ', t, 1000 * t) for t in range(10))
    seeds['balloon'] = dev_seed(3, 0xe3, 3, {
        0: [[(0x1800, 16, 0)]], 1: [[(0x1800, 16, 0)]], 2: [[(0x1900, len(stats), 0)]],
        3: [[(0x10000, 4096, 1)]]},
        {0x1800: pfns, 0x1900: stats},
        KICK(0) + KICK(1) + RUN + KICK(2) + RUN + KICK(3) + RUN + dop(5, 2) + RUN + RUN)
    seeds['console'] = dev_seed(4, 0x03, 3, {
        0: [[(0x10000, 64, 1)], [(0x10100, 64, 1)]], 1: [[(0x1800, 6, 0)]]},
        {0x1800: b'hello\n'},
        KICK(1) + KICK(0) + host_in(0, b'typed') + RUN + RUN + KICK(0) + RUN)
    seeds['rng'] = dev_seed(5, 0x03, 3, {0: [[(0x10000, 64, 1)], [(0x1800, 8, 1), (0x10100, 8, 1)]]},
                            {}, KICK(0) + RUN)
    # virtio-pmem: a flush, an unknown type, a flush with a short status.
    seeds['pmem'] = dev_seed(6, 0x03, 3, {0: [
        [(0x1800, 4, 0), (0x1900, 4, 1)], [(0x1804, 4, 0), (0x1904, 4, 1)],
        [(0x1800, 4, 0), (0x1908, 2, 1)]]},
        {0x1800: struct.pack('<II', 0, 7)}, KICK(0) + RUN + RUN)
elif target == 'fuzz_mmds':
    # fuzz_mmds: mode 1/3 an HTTP request (3: V2); mode 0 frames, each with
    # a 2-byte big-endian length: an ARP request, a SYN, the request.
    seeds['get'] = b'\x01GET /latest/meta-data HTTP/1.1\r\nAccept: application/json\r\n\r\n'
    seeds['token'] = (b'\x03PUT /latest/api/token HTTP/1.1\r\n'
                      b'X-metadata-token-ttl-seconds: 60\r\n\r\n')
    mac, mmds, guest = bytes([6, 0, 0xac, 0x10, 0, 2]), bytes([169, 254, 169, 254]), bytes([10, 0, 0, 2])
    arp = b'\xff' * 6 + mac + b'\x08\x06' + struct.pack('>HHBBH', 1, 0x0800, 6, 4, 1) + mac + guest + bytes(6) + mmds
    def seg(seq, ack, flags, data=b''):
        opt = b'\x02\x04\x05\xb4' if flags & 2 else b''
        tcp = struct.pack('>HHIIBBHHH', 4000, 80, seq, ack, (20 + len(opt)) // 4 << 4, flags, 65535, 0, 0)
        ip = struct.pack('>BBHHHBBH', 0x45, 0, 20 + len(tcp) + len(opt) + len(data), 0, 0x4000, 64, 6, 0) + guest + mmds
        return bytes([6, 1, 0x23, 0x45, 0x67, 1]) + mac + b'\x08\x00' + ip + tcp + opt + data
    def cookie(seq):  # mmds_net.c's cookie() with key 0, for 10.0.0.2:4000, MSS index 3
        M = (1 << 64) - 1
        x = ((0x0a000002 << 32) | (4000 << 16)) ^ ((seq * 0x9e3779b97f4a7c15) & M)
        x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M
        x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M
        return ((x ^ (x >> 31)) & 0xfffffffc) | 3
    isn = cookie(1000)
    frames = [arp, seg(1000, 0, 2), seg(1001, (isn + 1) & 0xffffffff, 0x18, b'GET /latest HTTP/1.1\r\n\r\n'),
              seg(1027, (isn + 2) & 0xffffffff, 0x11)]
    seeds['frames'] = b'\x00' + b''.join(struct.pack('>H', len(f)) + f for f in frames)
elif target == 'fuzz_fuse':
    # fuzz_fuse's request: flags (0: true length, counter unique, one
    # buffer each way), opcode, nodeid, uid byte, u16 argument length,
    # reply room index (4: a page, 6: 1 MiB + header), arguments.
    def fr(op, node, arg=b'', room=4, flags=0, who=0):
        return bytes([flags, op, node, who]) + struct.pack('<HB', len(arg), room) + arg
    z = lambda name: name.encode() + b'\0'
    LOOKUP, FORGET, GETATTR, SETATTR, READLINK, SYMLINK, MKNOD, MKDIR = 1, 2, 3, 4, 5, 6, 8, 9
    UNLINK, RMDIR, RENAME, LINK, OPEN, READ, WRITE, STATFS, RELEASE = 10, 11, 12, 13, 14, 15, 16, 17, 18
    FSYNC, SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR, FLUSH = 20, 21, 22, 23, 24, 25
    OPENDIR, READDIR, RELEASEDIR, ACCESS, CREATE, INTERRUPT = 27, 28, 29, 34, 35, 36
    DESTROY, BATCH_FORGET, FALLOCATE, READDIRPLUS, RENAME2, LSEEK = 38, 42, 43, 44, 45, 46
    # Node ids are table slots + 1 (root 1); file handles too, from 1.
    files = (fr(LOOKUP, 1, z('file')) + fr(LOOKUP, 1, z('dir')) + fr(LOOKUP, 3, z('inner')) +
             fr(GETATTR, 2, struct.pack('<IIQ', 0, 0, 0)) +
             fr(OPEN, 2, struct.pack('<II', 2, 0)) +
             fr(READ, 2, struct.pack('<QQIIQII', 1, 0, 8192, 0, 0, 0, 0), room=6) +
             fr(WRITE, 2, struct.pack('<QQIIQII', 1, 4090, 11, 0, 0, 0, 0) + b'hello world') +
             fr(LSEEK, 2, struct.pack('<QQII', 1, 0, 3, 0)) +
             fr(FALLOCATE, 2, struct.pack('<QQQII', 1, 0, 65536, 0, 0)) +
             fr(FLUSH, 2, struct.pack('<QIIQ', 1, 0, 0, 0)) +
             fr(FSYNC, 2, struct.pack('<QII', 1, 0, 0)) +
             fr(RELEASE, 2, struct.pack('<QIIQ', 1, 0, 0, 0)) +
             fr(SETATTR, 2, struct.pack('<IIQQQQQQIIIIIIII', 1 | 8, 0, 0, 100, 0, 0, 0, 0, 0,
                                        0, 0, 0o600, 0, 0, 0, 0)) +
             fr(FORGET, 4, struct.pack('<Q', 1)) + fr(STATFS, 1) +
             fr(ACCESS, 2, struct.pack('<II', 4, 0)))
    dirs = (fr(MKDIR, 1, struct.pack('<II', 0o755, 0o22) + z('new'), who=1) +
            fr(CREATE, 2, struct.pack('<IIII', 0o102, 0o644, 0o22, 0) + z('f')) +
            fr(SYMLINK, 2, z('s') + z('../../outside/secret')) +
            fr(READLINK, 4) +
            fr(LINK, 2, struct.pack('<Q', 3) + z('hard')) +
            fr(RENAME, 1, struct.pack('<Q', 1) + z('file') + z('moved')) +
            fr(RENAME2, 1, struct.pack('<QII', 1, 2, 0) + z('moved') + z('dir')) +
            fr(MKNOD, 2, struct.pack('<IIII', 0o10644, 0, 0o22, 0) + z('p')) +
            fr(MKNOD, 2, struct.pack('<IIII', 0o20644, 0x0103, 0o22, 0) + z('dev')) +
            fr(OPENDIR, 2, struct.pack('<II', 0, 0)) +
            fr(READDIRPLUS, 2, struct.pack('<QQIIQII', 2, 0, 4096, 0, 0, 0, 0)) +
            fr(READDIR, 2, struct.pack('<QQIIQII', 2, 0, 4096, 0, 0, 0, 0)) +
            fr(RELEASEDIR, 2, struct.pack('<QIIQ', 2, 0, 0, 0)) +
            fr(UNLINK, 2, z('f')) + fr(RMDIR, 1, z('new')) +
            fr(BATCH_FORGET, 0, struct.pack('<II', 2, 0) + struct.pack('<QQ', 2, 1) * 2))
    xattrs = (fr(LOOKUP, 1, z('file')) +
              fr(SETXATTR, 2, struct.pack('<II', 5, 0) + z('user.k') + b'value') +
              fr(GETXATTR, 2, struct.pack('<II', 64, 0) + z('user.k')) +
              fr(LISTXATTR, 2, struct.pack('<II', 64, 0)) +
              fr(REMOVEXATTR, 2, z('user.k')) +
              fr(SETXATTR, 2, struct.pack('<II', 1, 0) + z('security.capability') + b'x'))
    odd = (fr(LOOKUP, 1, z('escape')) + fr(LOOKUP, 1, z('fifo')) + fr(OPEN, 2, struct.pack('<II', 0, 0)) +
           fr(OPEN, 3, struct.pack('<II', 0, 0)) + fr(LOOKUP, 1, z('..')) + fr(LOOKUP, 1, z('a/b')) +
           fr(CREATE, 1, struct.pack('<IIII', 0o102, 0o644, 0o22, 0) + z('dangle')) +
           fr(MKDIR, 1, struct.pack('<II', 0o755, 0o22) + z('abs')) + fr(LOOKUP, 1, z('abs')) +
           fr(INTERRUPT, 0, struct.pack('<Q', 5)) + fr(GETATTR, 99) + fr(DESTROY, 0) + fr(STATFS, 1) +
           fr(LOOKUP, 1, z('file'), flags=1 | 2 | 4 | 8 | 16)[:6] + struct.pack('<IQ', 999, 7) +
           bytes([4]) + z('file'))
    seeds['files'] = b'\x00' + files
    seeds['dirs'] = b'\x04' + dirs
    seeds['xattrs'] = b'\x00' + xattrs
    seeds['odd'] = b'\x00' + odd
    seeds['readonly'] = b'\x01' + files + dirs
    init = struct.pack('<IIII', 7, 38, 1 << 17, 0)
    seeds['init'] = b'\x02' + fr(LOOKUP, 1, z('file')) + fr(26, 0, init) + fr(26, 0, init) + files
elif target == 'fuzz_virtq':
    seeds['normal'] = virtq_seed(3, 0x03, 0, [0, 2, 3])
    seeds['wrap'] = virtq_seed(3, 0x01, 0xfffe, [0, 2, 3])
    seeds['noindirect'] = virtq_seed(2, 0x00, 5, [3, 0])
    seeds['longchain'] = virtq_seed(6, 0x02, 0, [0], table_chain=True)
else:
    seeds['macro'] = mmio_seed(False)
    seeds['manual'] = mmio_seed(True)
for name, data in seeds.items():
    with open(os.path.join(out, 'seed-' + name), 'wb') as f:
        f.write(data)
EOF
}

mkdir -p "$build/artifacts"
failed=()
for t in $targets; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  [ -n "$(ls -A "$corpus")" ] || seed "$t" "$corpus"
  echo "== $t: ${secs}s, corpus $corpus"
  # -max_len: the virtq input is 16 header bytes + 8 KiB of RAM; the mmio
  # and device ones a RAM image (up to 12 KiB) plus operations.
  # shellcheck disable=SC2086
  if ! "$build/tests/fuzz/$t" -max_total_time="$secs" -max_len=16384 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$build/artifacts/$t-" ${FUZZ_ARGS:-} "$corpus" \
      > "$build/$t.log" 2>&1; then
    failed+=("$t")
    echo "!! $t failed; log $build/$t.log; artifacts:" >&2
    ls "$build/artifacts" | grep "^$t-" >&2 || true
    tail -40 "$build/$t.log" >&2
  else
    grep -E '^stat::(number_of_executed_units|new_units_added)|^Done' "$build/$t.log" || true
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "run.sh: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "run.sh: no findings"
