"""live.playback.recorder against real I/O failures: a full tmpfs, a read-only remount, a vanished folder."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import mido
import pytest

from live.playback import recorder as recorder_module
from live.playback.recorder import TICKS_PER_BEAT, Recorder
from tests.support.polling import stays_true


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.contextmanager
def small_tmpfs(size: str = "64k"):
    """A private tmpfs of ``size`` (needs root; the test is skipped otherwise)."""
    where = Path("/tmp") / f"v2m-tmpfs-{uuid.uuid4().hex[:8]}"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for block in (4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * block)
    finally:
        os.close(fd)
    return filler


def play_bar(rec: Recorder, bar: int, notes: int = 8) -> None:
    for i in range(notes):
        rec.position = bar * 4 + i * 0.5
        rec.event([0x91, 60 + i % 12, 90])
        rec.event([0x81, 60 + i % 12, 0])


def note_ons(path: Path) -> int:
    return sum(m.type == "note_on" for m in mido.MidiFile(path).tracks[0])


def test_the_file_is_written_by_mido_and_replaced_atomically(tmp_path):
    path = tmp_path / "take.mid"
    rec = Recorder(path, bpm=90)
    play_bar(rec, 0)
    rec.flush()
    first = mido.MidiFile(path)
    assert first.type == 0 and first.ticks_per_beat == TICKS_PER_BEAT
    assert note_ons(path) == 8
    inode = path.stat().st_ino
    play_bar(rec, 1)
    rec.close()
    assert note_ons(path) == 16 and path.stat().st_ino != inode, "a new file renamed over the old one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mid"]


def test_disk_full_stops_once_keeps_the_last_good_file_and_resumes(caplog):
    clock = FakeClock()
    with small_tmpfs() as disk, caplog.at_level(logging.WARNING, logger="live.playback.recorder"):
        path = disk / "take.mid"
        rec = Recorder(path, clock=clock)
        play_bar(rec, 0)
        rec.flush()
        good = path.read_bytes()
        filler = fill(disk)
        for bar in range(1, 40):
            play_bar(rec, bar, notes=64)
            clock.now += 2.0
            rec.flush_due()
        assert rec.failed == "disk full"
        assert path.read_bytes() == good, "the file keeps its last good flush"
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "take.mid"], "no .part left"
        stopped = [r.getMessage() for r in caplog.records if "recording stopped" in r.getMessage()]
        assert len(stopped) == 1 and "disk full" in stopped[0] and str(path) in stopped[0]
        filler.unlink()
        clock.now += recorder_module.RETRY_MAX_S
        rec.flush_due()
        assert rec.failed is None
        assert any("recording resumed" in r.getMessage() for r in caplog.records)
        assert note_ons(path) == 8 + 39 * 64, "nothing played while the disk was full is lost"
        rec.close()


def test_back_off_doubles_between_retries(tmp_path):
    clock = FakeClock()
    with small_tmpfs() as disk:
        rec = Recorder(disk / "take.mid", clock=clock)
        fill(disk)
        attempts = []
        real_write = rec._write

        def counting_write():
            attempts.append(clock.now)
            real_write()

        rec._write = counting_write
        play_bar(rec, 0, notes=2000)
        for _ in range(200):
            clock.now += 0.5
            rec.flush_due()
        gaps = [b - a for a, b in zip(attempts, attempts[1:])]
        assert gaps[:4] == [1.0, 2.0, 4.0, 8.0] and max(gaps) <= recorder_module.RETRY_MAX_S
        rec.close()


def test_read_only_remount_is_one_line_and_recording_resumes_after(caplog):
    clock = FakeClock()
    with small_tmpfs("256k") as disk, caplog.at_level(logging.WARNING, logger="live.playback.recorder"):
        path = disk / "take.mid"
        rec = Recorder(path, clock=clock)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        play_bar(rec, 0)
        rec.flush()
        assert rec.failed == "file system is read-only"
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        clock.now += recorder_module.RETRY_S
        rec.flush()
        assert rec.failed is None and note_ons(path) == 8
        rec.close()


def test_vanished_folder_is_recreated_on_retry(tmp_path, caplog):
    clock = FakeClock()
    folder = tmp_path / "takes"
    path = folder / "take.mid"
    with caplog.at_level(logging.WARNING, logger="live.playback.recorder"):
        rec = Recorder(path, clock=clock)
        shutil.rmtree(folder)
        play_bar(rec, 0)
        rec.flush()
        assert rec.failed == "folder vanished"
        assert [r.getMessage() for r in caplog.records if "stopped" in r.getMessage()][0].startswith(
            "recording stopped: folder vanished")
        clock.now += recorder_module.RETRY_S
        play_bar(rec, 1)
        rec.flush()
        assert rec.failed is None and note_ons(path) == 16
        assert os.listdir(folder) == ["take.mid"]
        rec.close()


def test_the_live_server_plays_on_through_a_full_disk(tmp_path):
    """``run_live.py`` recording onto a 256 KB tmpfs that fills up: one line, the show goes on, the
    file keeps its last good flush, recording resumes when space returns, exit 0 on SIGTERM."""
    import signal
    import sys
    import time

    root = Path(__file__).resolve().parent.parent
    with small_tmpfs("256k") as disk:
        record = disk / "take.mid"
        log = open(tmp_path / "server.log", "w")
        env = {**os.environ, "JACK_DEFAULT_SERVER": f"v2mabsent{os.getpid()}"}  # no MIDI backend: file only
        proc = subprocess.Popen([sys.executable, "run_live.py", "--midi-api", "jack", "--bpm", "300",
                                 "--record", str(record), "--status", "off", "--osc-port", str(free_udp_port())],
                                cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env)
        output = lambda: (tmp_path / "server.log").read_text()

        def wait(predicate, timeout=60.0):
            deadline = time.monotonic() + timeout
            while not predicate():
                assert proc.poll() is None, output()
                assert time.monotonic() < deadline, output()
                time.sleep(0.1)

        try:
            wait(lambda: record.exists() and note_ons(record) > 0)
            filler = fill(disk)
            wait(lambda: "recording stopped: disk full" in output())
            good = note_ons(record)
            assert sorted(p.name for p in disk.iterdir()) == ["filler", "take.mid"]
            assert stays_true(lambda: proc.poll() is None and note_ons(record) == good, 2.0, step=0.1), \
                "the server keeps playing and the file keeps its last good flush"
            filler.unlink()
            wait(lambda: "recording resumed" in output())
            wait(lambda: note_ons(record) > good)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        text = output()
        assert text.count("recording stopped") == 1 and "Traceback" not in text, text
        assert not (disk / "take.mid.part").exists()
        assert note_ons(record) > good


def test_an_unwritable_record_path_is_one_line_and_the_show_goes_on(tmp_path):
    import signal
    import sys
    import time

    root = Path(__file__).resolve().parent.parent
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    log = tmp_path / "server.log"
    env = {**os.environ, "JACK_DEFAULT_SERVER": f"v2mabsent{os.getpid()}"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "run_live.py", "--midi-api", "jack", "--status", "log",
                                 "--record", str(blocker / "take.mid"), "--osc-port", str(free_udp_port())],
                                cwd=root, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 60
            while log.read_text().count(" b=+") < 2:  # two status lines: it is playing
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    lines = [line for line in text.splitlines() if "cannot write" in line]
    assert len(lines) == 1 and str(blocker / "take.mid") in lines[0] and "not a folder" in lines[0], text
    assert "recording  off" in text and "Traceback" not in text
    assert int(text.split("played ")[1].split()[0]) > 0, text
