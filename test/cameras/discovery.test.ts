import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { discoverUsbCameras, discoverCsiCameras, discoverCameras } from '../../src/cameras/discovery.ts';
import {
  FIXTURES, V4L2_FIXTURES, STANDINS, addV4lLink, fakeRootFromSystem, fixtureDevices, removeDir, standinEnv, tempDir,
} from './fake-box.ts';

const cleanup: string[] = [];
after(async () => {
  for (const d of cleanup) await removeDir(d);
});
const track = <T extends string>(d: T): T => {
  cleanup.push(d);
  return d;
};

const PI4 = path.join(V4L2_FIXTURES, 'systems/raspi4-mainsailos');

test('Pi 4 box: only the USB webcam is a camera; codec, ISP, CSI receiver and metadata nodes are skipped', async () => {
  const root = track(await fakeRootFromSystem(PI4));
  await addV4lLink(root, 'by-path', 'platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.1:1.0-video-index0', 'video2');
  await addV4lLink(root, 'by-path', 'platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.1:1.0-video-index1', 'video3');
  const env = standinEnv({ RIGCAM_FIXTURE_DIR: PI4 });
  const { cameras, skipped } = await discoverUsbCameras({ rootDir: root, env });
  assert.equal(cameras.length, 1);
  assert.deepEqual(cameras[0], {
    kind: 'v4l2',
    device: path.join(root, 'dev/video2'),
    stableId: 'path-platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.1:1.0',
    name: 'webcam',
    card: 'Webcam: Webcam',
    driver: 'uvcvideo',
    busInfo: 'usb-0000:01:00.0-1.1',
    byPath: 'platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.1:1.0-video-index0',
  });
  const reason = (node: string): string => skipped.find((s) => s.device === path.join(root, 'dev', node))?.reason ?? '(not skipped)';
  assert.match(reason('video0'), /unicam/);
  assert.match(reason('video1'), /unicam/);
  assert.match(reason('video3'), /not a video capture node \(Metadata Capture/);
  for (const n of ['video10', 'video11', 'video12', 'video18', 'video31']) assert.match(reason(n), /bcm2835-codec/, n);
  for (const n of ['video13', 'video14', 'video15', 'video16', 'video20', 'video21', 'video22', 'video23']) assert.match(reason(n), /bcm2835-isp/, n);
  assert.match(reason('video19'), /rpivid/);
  assert.equal(skipped.length, 17);
});

test('Rockchip board: ISP nodes skipped, the 3DO camera kept, its metadata node skipped', async () => {
  const sys = path.join(V4L2_FIXTURES, 'systems/btt-pi2-rk3566');
  const root = track(await fakeRootFromSystem(sys));
  const { cameras, skipped } = await discoverUsbCameras({ rootDir: root, env: standinEnv({ RIGCAM_FIXTURE_DIR: sys }) });
  assert.deepEqual(cameras.map((c) => [path.basename(c.device), c.name]), [['video9', '3do-usb-camera']]);
  assert.match(skipped.find((s) => s.device.endsWith('video10'))?.reason ?? '', /Metadata Capture/);
  assert.equal(skipped.filter((s) => /Rockchip/.test(s.reason)).length, 9);
});

test('udev serial gives an identity that follows the camera; a shared serial falls back to the port', async () => {
  // A box assembled from recorded pieces: the generic webcam's v4l2-ctl --info and the C930e's udev dump.
  const webcam = path.join(V4L2_FIXTURES, 'generic-webcam-h264-yg-u700');
  const c930e = path.join(FIXTURES, 'udev/logitech-c930e');
  const root = track(await tempDir('root'));
  for (const node of ['video0', 'video2']) {
    await mkdir(path.join(root, 'sys/class/video4linux', node), { recursive: true });
    await writeFile(path.join(root, 'sys/class/video4linux', node, 'name'), 'Webcam: Webcam\n');
  }
  const fix = track(await fixtureDevices({ video0: webcam }));
  const udevOne = track(await fixtureDevices({ video0: c930e }));
  const one = await discoverUsbCameras({
    rootDir: root,
    env: standinEnv({ RIGCAM_FIXTURE_DIR: fix, RIGCAM_UDEV_FIXTURE_DIR: udevOne }),
  });
  assert.equal(one.cameras.length, 1, 'video2 has no recording: v4l2-ctl cannot open it');
  assert.match(one.skipped[0]?.reason ?? '', /Cannot open device .*video2/);
  assert.deepEqual(
    { stableId: one.cameras[0]?.stableId, serial: one.cameras[0]?.serial, idSerial: one.cameras[0]?.idSerial },
    { stableId: 'usb-046d_Logitech_Webcam_C930e_80C0D3BE', serial: '80C0D3BE', idSerial: '046d_Logitech_Webcam_C930e_80C0D3BE' },
  );

  // Two cameras reporting the same serial: neither serial identifies, the ports do.
  const fix2 = track(await fixtureDevices({ video0: webcam, video2: webcam }));
  const udevTwo = track(await fixtureDevices({ video0: c930e, video2: c930e }));
  await addV4lLink(root, 'by-path', 'platform-xhci-hcd.0-usb-0:1:1.0-video-index0', 'video0');
  await addV4lLink(root, 'by-path', 'platform-xhci-hcd.0-usb-0:2:1.0-video-index0', 'video2');
  const two = await discoverUsbCameras({
    rootDir: root,
    env: standinEnv({ RIGCAM_FIXTURE_DIR: fix2, RIGCAM_UDEV_FIXTURE_DIR: udevTwo }),
  });
  assert.deepEqual(two.cameras.map((c) => [c.stableId, c.name]), [
    ['path-platform-xhci-hcd.0-usb-0:1:1.0', 'webcam'],
    ['path-platform-xhci-hcd.0-usb-0:2:1.0', 'webcam-2'],
  ]);
});

test('a by-id link identifies the camera when udevadm gives nothing', async () => {
  const root = track(await fakeRootFromSystem(PI4));
  await addV4lLink(root, 'by-id', 'usb-Webcam_Webcam_YG_U700_D.2021.0104.1403-video-index0', 'video2');
  await addV4lLink(root, 'by-id', 'usb-Webcam_Webcam_YG_U700_D.2021.0104.1403-video-index1', 'video3');
  const { cameras } = await discoverUsbCameras({ rootDir: root, env: standinEnv({ RIGCAM_FIXTURE_DIR: PI4 }) });
  assert.equal(cameras[0]?.stableId, 'usb-Webcam_Webcam_YG_U700_D.2021.0104.1403');
  assert.equal(cameras[0]?.byId, 'usb-Webcam_Webcam_YG_U700_D.2021.0104.1403-video-index0');
});

test('without v4l2-ctl, udev capability tags decide (v4l2loopback devices)', async () => {
  // PATH holding only the udevadm stand-in and the few programs the stand-in scripts use.
  const bin = track(await tempDir('bin'));
  for (const tool of ['bash', 'cat', 'sed', 'basename']) {
    const real = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
    await symlink(real, path.join(bin, tool));
  }
  await symlink(path.join(STANDINS, 'udevadm'), path.join(bin, 'udevadm'));
  const root = track(await tempDir('root'));
  for (const [node, name] of [['video0', 'Droidcam'], ['video2', 'scrcpy']]) {
    await mkdir(path.join(root, 'sys/class/video4linux', node), { recursive: true });
    await writeFile(path.join(root, 'sys/class/video4linux', node, 'name'), `${name}\n`);
  }
  const udev = track(await fixtureDevices({
    video0: path.join(FIXTURES, 'udev/droidcam-v4l2loopback'),
    video2: path.join(FIXTURES, 'udev/scrcpy-v4l2loopback'),
  }));
  const env = { ...process.env, PATH: bin, RIGCAM_UDEV_FIXTURE_DIR: udev };
  const { cameras, skipped } = await discoverUsbCameras({ rootDir: root, env });
  assert.deepEqual(cameras.map((c) => [path.basename(c.device), c.card, c.stableId]), [['video0', 'Droidcam', 'card-droidcam-unknown-bus']]);
  assert.match(skipped[0]?.reason ?? '', /udev: :video_output:/);

  // Neither v4l2-ctl nor udev: a clear error rather than guessing.
  await assert.rejects(discoverUsbCameras({ rootDir: root, env: { ...process.env, PATH: path.join(bin, 'none') } }), /v4l2-ctl not found on PATH/);
});

test('CSI cameras through rpicam-hello, with stable identities from the device-tree path', async () => {
  const env = standinEnv({ RIGCAM_RPICAM_FIXTURE: path.join(FIXTURES, 'rpicam/rpi-docs-imx219-imx477/list-cameras.txt') });
  const csi = await discoverCsiCameras({ env });
  assert.deepEqual(csi.map((c) => [c.index, c.sensor, c.stableId, c.camera.modes.length]), [
    [0, 'imx219', 'csi-base-soc-i2c0mux-i2c@1-imx219@10', 8],
    [1, 'imx477', 'csi-base-soc-i2c0mux-i2c@1-imx477@1a', 4],
  ]);
  assert.deepEqual(await discoverCsiCameras({ env: standinEnv() }), [], '"No cameras available!"');
});

test('CSI discovery falls back to the older libcamera-hello name', async () => {
  const bin = track(await tempDir('oldbin'));
  await symlink(path.join(STANDINS, 'rpicam-hello'), path.join(bin, 'libcamera-hello'));
  const log = path.join(bin, 'calls.log');
  const env = standinEnv(
    { RIGCAM_RPICAM_FIXTURE: path.join(FIXTURES, 'rpicam/pi5-imx708-camera-module-3/list-cameras.txt'), RIGCAM_STANDIN_LOG: log },
    [bin],
  );
  const csi = await discoverCsiCameras({ env });
  assert.deepEqual(csi.map((c) => c.stableId), ['csi-base-axi-pcie@120000-rp1-i2c@88000-imx708@1a']);
  assert.equal((await readFile(log, 'utf8')).trim(), 'libcamera-hello --list-cameras');
  assert.deepEqual(await discoverCsiCameras({ env: { ...process.env, PATH: path.join(bin, 'none') } }), []);
});

test('discoverCameras returns USB and CSI cameras together', async () => {
  const root = track(await fakeRootFromSystem(PI4));
  const env = standinEnv({
    RIGCAM_FIXTURE_DIR: PI4,
    RIGCAM_RPICAM_FIXTURE: path.join(FIXTURES, 'rpicam/pi4-imx708-wide/list-cameras.txt'),
  });
  const all = await discoverCameras({ rootDir: root, env });
  assert.deepEqual(all.usb.map((c) => c.name), ['webcam']);
  assert.deepEqual(all.csi.map((c) => c.sensor), ['imx708_wide']);
  assert.equal(all.skipped.length, 17);
});
