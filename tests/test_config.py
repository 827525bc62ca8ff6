"""live.app.config: command line, TOML files, precedence, presets and one-line errors."""

from __future__ import annotations

import subprocess
from dataclasses import replace
import sys
from pathlib import Path

import pytest

from live.app.config import (OPTIONS, ConfigError, build_params, load_settings, parse_settings,
                         settings_toml)
from live.control.params import Preset

ANCHORS = ["rain", "sunset"]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "live.toml"
    path.write_text(text)
    return str(path)


def test_host_names_resolve():
    assert parse_settings(["--osc-host", "localhost"]).osc_host == "127.0.0.1"


def test_defaults_match_the_issue():
    s = parse_settings([])
    assert (s.bpm, s.osc_host, s.osc_port, s.quantum, s.threads) == (120.0, "127.0.0.1", 9000, "beat", 1)
    assert s.midi_port is None and not s.no_record and s.alpha_source == "osc"
    assert s.midi_name == "Vis2Mus" and s.max_note == 4.0
    assert s.record_default and s.record.startswith("recordings/vis2mus-") and s.record.endswith(".mid")
    off = parse_settings(["--no-record"])
    assert off.record is None and not off.record_default
    assert "record" not in settings_toml(s).replace("no_record", "")


def test_every_option_is_settable_on_the_command_line_and_in_toml(tmp_path):
    cli = {
        "bpm": ("97.5", 97.5), "quantum": ("bar", "bar"), "velocity": ("64", 64),
        "anchor": ("sunset", ("sunset",)), "anchors": ("my/anchors", ("my/anchors",)), "osc_host": ("0.0.0.0", "0.0.0.0"), "osc_port": ("9100", 9100),
        "osc_allow": ("192.168.1.20,10.0.0.3", ("192.168.1.20", "10.0.0.3")),
        "osc_reply": ("127.0.0.1:9001", ("127.0.0.1", 9001)), "midi_api": ("jack", "jack"),
        "midi_port": ("FluidSynth", "FluidSynth"), "midi_name": ("Stage", "Stage"),
        "max_note": ("2.5", 2.5), "clock_in": ("Clock In", "Clock In"),
        "record": ("take.mid", "take.mid"), "video": ("clip.mp4", "clip.mp4"), "source": ("osc", "osc"),
        "smoothing": ("0.25", 0.25), "camera_timeout": ("3", 3.0), "weights": ("w.pt", "w.pt"),
        "device": ("cpu", "cpu"), "threads": ("2", 2), "status": ("log", "log"),
        "midi_in": ("nanoKONTROL2", "nanoKONTROL2"), "chord_channel": ("3", 3), "chord_split": ("55", 55),
        "chord_hold": ("0.5", 0.5), "thru_channel": ("4", 4), "midi_offset": ("-12.5", -12.5),
        "melody_channel": ("5", 5), "accompaniment_channel": ("6", 6), "oscquery": ("9101", 9101),
        "oscquery_host": ("0.0.0.0", "0.0.0.0"),
        "mode": ("paper", "paper"), "register": ("36-96", (36, 96)),
    }
    flags = {"follow_velocity", "clock_out", "no_record", "camera", "image", "no_midi_in", "oscquery_advertise",
             "link"}
    assert set(cli) | flags == {o.name for o in OPTIONS}
    argv = []
    for name, (text, _) in cli.items():
        argv += ["--" + name.replace("_", "-"), text]
    from_cli = parse_settings(argv + ["--follow-velocity", "--clock-out"])
    for name, (_, value) in cli.items():
        assert getattr(from_cli, name) == value, name
    assert from_cli.follow_velocity and from_cli.clock_out
    from_toml = parse_settings(["--config", write(tmp_path, settings_toml(from_cli))])
    for name in cli:
        assert getattr(from_toml, name) == getattr(from_cli, name), name
    assert from_toml.follow_velocity and from_toml.clock_out


def test_toml_round_trip_with_presets(tmp_path):
    path = write(tmp_path, """
bpm = 90
osc-port = 9200
image = "scene.png"
[presets.1]
anchor = "rain"
brightness = 0.4
contrast = -0.2
[presets.7]
anchor = "sunset"
content = "cat"
tempo = 140
""")
    s = parse_settings(["--config", path])
    assert (s.bpm, s.osc_port, s.image, s.alpha_source) == (90.0, 9200, "scene.png", "camera")
    assert s.presets == {1: Preset("rain", None, 0.4, -0.2, None), 7: Preset("sunset", "cat", 0.0, 0.0, 140.0)}
    again = parse_settings(["--config", write(tmp_path, settings_toml(s))])
    assert replace(again, record=None) == replace(s, record=None)  # the default path carries the time


def test_command_line_wins_over_the_file(tmp_path):
    path = write(tmp_path, 'bpm = 90\nquantum = "bar"\ncamera = 0\n')
    s = parse_settings(["--config", path, "--bpm", "150", "--video", "clip.mp4"])
    assert (s.bpm, s.quantum, s.video, s.camera) == (150.0, "bar", "clip.mp4", None)


@pytest.mark.parametrize("text, fragment", [
    ("tempo = 100\n", "unknown key 'tempo'"),
    ("bpm = 'fast'\n", "bpm: expected a number"),
    ("bpm = 1000\n", "out of range 20..300"),
    ("bpm = nan\n", "finite"),
    ("osc_port = 70000\n", "out of range"),
    ("osc_port = 9000.5\n", "integer"),
    ("osc_allow = ['1.2.3.400']\n", "not an IP address"),
    ("osc_reply = 'localhost'\n", "HOST:PORT"),
    ("quantum = 'phrase'\n", "expected one of beat, bar, segment"),
    ("clock_out = 'yes'\n", "true or false"),
    ("camera = 0\nvideo = 'a.mp4'\n", "choose one of"),
    ("bpm = \n", "not valid TOML"),
    ("[presets.1]\nbrightness = 0.5\n", "needs an anchor"),
    ("[presets.1]\nanchor = 'rain'\nbrightness = 2\n", "out of range -1..1"),
    ("[presets.1]\nanchor = 'rain'\nhue = 2\n", "unknown key 'hue'"),
    ("[presets.x]\nanchor = 'rain'\n", "preset numbers are 0..127"),
    ("[presets.200]\nanchor = 'rain'\n", "preset numbers are 0..127"),
    ("mode = 'loud'\n", "expected one of feel, paper"),
    ("register = [60, 65]\n", "spanning an octave"),
    ("register = '20-200'\n", "out of range 0..127"),
    ("register = [1, 2, 3]\n", "LOW-HIGH"),
])
def test_bad_files_are_one_line_errors(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as error:
        parse_settings(["--config", write(tmp_path, text)])
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        parse_settings(["--config", str(tmp_path / "absent.toml")])


@pytest.mark.parametrize("argv, fragment", [
    (["--bpm", "-5"], "--bpm: -5 is out of range"),
    (["--osc-host", "no-such-host.invalid"], "--osc-host: expected an IPv4 address or host name"),
    (["--record", "a.mid", "--no-record"], "contradict"),
    (["--camera", "x"], "--camera: expected an integer"),
])
def test_bad_command_lines_exit_with_one_line(capsys, argv, fragment):
    with pytest.raises(SystemExit) as exit_info:
        load_settings(argv)
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert fragment in last


def test_print_config_runs_as_a_process(tmp_path):
    path = write(tmp_path, "bpm = 88\n[presets.2]\nanchor = 'rain'\n")
    out = subprocess.run([sys.executable, "-c", "import sys; from live.app.config import load_settings; "
                          "load_settings(sys.argv[1:])", "--config", path, "--print-config", "--threads", "2"],
                         capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1])
    assert out.returncode == 0, out.stderr
    assert "bpm = 88.0" in out.stdout and "threads = 2" in out.stdout and "[presets.2]" in out.stdout


def test_build_params_starts_from_the_settings(tmp_path):
    path = write(tmp_path, "bpm = 100\nanchor = 'sunset'\nquantum = 'segment'\nvideo = 'x.mp4'\n"
                           "[presets.3]\nanchor = 'rain'\nbrightness = -0.5\n")
    params = build_params(parse_settings(["--config", path]), ANCHORS, ["cat"])
    state = params.snapshot()
    assert (state.anchor, state.tempo, state.quantum, state.source) == ("sunset", 100.0, "segment", "camera")
    assert params.recall(3).state.alpha_b == -0.5
    with pytest.raises(ConfigError, match="unknown anchor 'lake'"):
        build_params(parse_settings(["--anchor", "lake"]), ANCHORS)
    bad = write(tmp_path, "[presets.1]\nanchor = 'lake'\n")
    with pytest.raises(ConfigError, match="presets: unknown anchor"):
        build_params(parse_settings(["--config", bad]), ANCHORS)


def test_midi_cc_map_and_preset_offset_round_trip_and_bad_entries_are_one_line(tmp_path):
    from live.control.midimap import Binding

    path = write(tmp_path, """
midi_offset = 12.5

[presets.3]
anchor = "rain"
midi_offset = -20

[midi.cc]
brightness = { cc = 20 }
tempo = { cc = 22, channel = 2, range = [60, 180], curve = "exp" }
""")
    s = parse_settings(["--config", path])
    assert s.midi_offset == 12.5 and s.presets[3].midi_offset == -20
    assert s.midi_map == (Binding("brightness", 20), Binding("tempo", 22, 1, 60, 180, "exp"))
    again = parse_settings(["--config", write(tmp_path, settings_toml(s))])
    assert again.midi_map == s.midi_map and again.presets == s.presets and again.midi_offset == 12.5
    for text, fragment in (("[midi.cc]\nbrightness = { cc = 300 }\n", "cc must be 0..127"),
                           ("[midi]\nnotes = 1\n", "midi must be a table"),
                           ("[presets.1]\nanchor = \"rain\"\nmidi_offset = 500\n", "out of range")):
        with pytest.raises(ConfigError, match=fragment) as error:
            parse_settings(["--config", write(tmp_path, text)])
        assert "\n" not in str(error.value)


def test_anchor_and_anchors_repeat_on_the_command_line_and_are_lists_in_toml(tmp_path):
    cli = parse_settings(["--anchor", "my/duet", "--anchor", "stride", "--anchors", "shelf"])
    assert cli.anchor == ("my/duet", "stride") and cli.anchors == ("shelf",)
    path = write(tmp_path, 'anchor = ["my/duet", "stride"]\nanchors = "shelf"\n')
    toml = parse_settings(["--config", path])
    assert (toml.anchor, toml.anchors) == (cli.anchor, cli.anchors)
    assert parse_settings(["--config", path, "--anchor", "lake"]).anchor == ("lake",)
    again = write(tmp_path, settings_toml(toml))
    assert parse_settings(["--config", again]).anchor == ("my/duet", "stride")
    with pytest.raises(ConfigError, match="anchor: expected text"):
        parse_settings(["--config", write(tmp_path, "anchor = [1]\n")])
    params = build_params(cli, ["stride", "duet"], start="duet")
    assert params.snapshot().anchor == "duet"
