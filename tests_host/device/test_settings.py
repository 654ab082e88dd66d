# Settings on flash: saved atomically (settings.py), restored at boot (settings_json.py),
# and a missing or corrupt file boots with defaults and says why. Runs on CPython and
# the unix port.
import json
import os

from fakes import FakeHardware, board_ios, scratch_dir
from pinsock.logic import settings as settings_module
from pinsock.boot import settings_json
from pinsock.logic.iobank import IoBank
from pinsock.logic.settings import Settings, is_valid_name

DEFAULT = "pinsock-0000"


def make(folder, dips=8, gpios=8):
    """(settings, bank, log) for a fresh boot with `folder` as the flash."""
    ios = board_ios(dips, gpios)
    bank = IoBank(FakeHardware(len(ios)), ios, 0)
    log = []
    return Settings(folder, bank, DEFAULT, log.append), bank, log


def write(path, data):
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def logged(log, words):
    return [line for line in log if words in line]


def test_missing_file_boots_with_defaults_and_says_so():
    d = scratch_dir("settings1")
    s, bank, log = make(d)
    assert settings_json.load(s) is False
    assert s.name == DEFAULT
    assert list(bank.direction) == [0] * 16
    assert list(bank.pull) == [1] * 8 + [0] * 8
    assert logged(log, "no " + d + "/settings.json, using defaults"), log


def test_save_then_boot_restores_direction_pull_and_name():
    d = scratch_dir("settings2")
    s, bank, _ = make(d)
    bank.direction[9] = 1
    bank.pull[8] = 2
    bank.pull[10] = 1
    s.name = "kitchen"
    assert s.save() is True
    s2, bank2, log2 = make(d)
    assert settings_json.load(s2) is True
    assert s2.name == "kitchen"
    assert list(bank2.direction) == list(bank.direction)
    assert list(bank2.pull) == list(bank.pull)
    assert log2 == []


def test_save_writes_one_json_object_and_leaves_no_temporary_file():
    d = scratch_dir("settings3")
    s, bank, _ = make(d, 2, 2)
    bank.direction[3] = 1
    s.name = "x"
    s.save()
    assert sorted(os.listdir(d)) == ["settings.json"]
    assert read_json(d + "/settings.json") == {"name": "x", "dir": [0, 0, 0, 1],
                                              "pull": [1, 1, 0, 0],
                                              "label": [None, None, None, None]}
    s.name = "y"
    s.save()  # replaces the file
    assert sorted(os.listdir(d)) == ["settings.json"]
    assert read_json(d + "/settings.json")["name"] == "y"


def corrupt(text):
    d = scratch_dir("settings_corrupt")
    write(d + "/settings.json", text)
    s, bank, log = make(d)
    used = settings_json.load(s)
    return used, s, bank, log


def test_corrupt_files_boot_with_defaults_and_say_why():
    for text in ("", "{", '{"name": "x",', "null x", b"\xff\xfe\x00garbage", "[1, 2"):
        used, s, bank, log = corrupt(text)
        assert used is False, text
        assert s.name == DEFAULT
        assert list(bank.direction) == [0] * 16
        assert logged(log, "is not valid JSON, using defaults"), (text, log)


def test_a_file_that_is_not_an_object_is_not_used():
    for text in ("[0, 1]", "42", '"name"', "null"):
        used, s, bank, log = corrupt(text)
        assert used is False
        assert logged(log, "is not an object"), (text, log)


def test_bad_entries_are_skipped_one_by_one():
    dirs = [0] * 16
    pulls = [1] * 8 + [0] * 8
    dirs[0] = 1  # a DIP switch cannot be an output
    pulls[1] = 0  # nor lose its pull-up
    dirs[9] = 1  # fine
    pulls[10] = 3  # no such pull
    dirs[11] = True  # not a number
    dirs[12] = 1.0  # not an integer (a bytearray cannot hold it)
    pulls[13] = "1"
    dirs[14] = -1
    pulls[15] = 2  # fine
    text = json.dumps({"name": "ok", "dir": dirs, "pull": pulls})
    used, s, bank, log = corrupt(text)
    assert used is True
    assert s.name == "ok"
    assert list(bank.direction) == [0] * 9 + [1] + [0] * 6
    assert list(bank.pull) == [1] * 8 + [0] * 7 + [2]
    skipped = [io for io in range(16) if logged(log, "ignoring direction/pull of io %d," % io)]
    assert skipped == [0, 1, 10, 11, 12, 13, 14], log


def test_an_invalid_name_is_ignored_but_the_rest_is_used():
    for name in ("", "x" * 33, 42, "tab\there", ["a"]):
        text = json.dumps({"name": name, "dir": [0] * 9 + [1] + [0] * 6,
                           "pull": [1] * 8 + [0] * 8})
        used, s, bank, log = corrupt(text)
        assert used is True
        assert s.name == DEFAULT
        assert bank.direction[9] == 1
        assert logged(log, "ignoring invalid name"), (name, log)


def test_labels_are_saved_and_restored_the_board_s_own_as_null():
    d = scratch_dir("settings_labels")
    s, bank, _ = make(d, 2, 2)
    assert bank.set_label(1, "back door") and bank.set_label(3, "pump")
    assert bank.set_label(3, "GPIO 3")  # the board's own again
    assert bank.labels_changed == 3
    s.save()
    assert read_json(d + "/settings.json")["label"] == [None, "back door", None, None]
    s2, bank2, _ = make(d, 2, 2)
    assert settings_json.load(s2) is True
    assert bank2.labels == ["DIP 1", "back door", "GPIO 2", "GPIO 3"]
    assert not s2.pending  # restoring is not a change to save
    assert bank2.set_label(1, "")  # the board's label back
    assert bank2.labels[1] == "DIP 2"


def test_setting_a_label_it_has_changes_nothing():
    d = scratch_dir("settings_labels2")
    s, bank, _ = make(d, 2, 2)
    assert not bank.set_label(0, "DIP 1") and not bank.set_label(2, "")
    assert bank.labels_changed == 0


def test_bad_labels_are_skipped_one_by_one():
    used, s, bank, log = corrupt('{"label": ["ok", 7, "x" , null, "%s", "\u00e9"]}' % ("y" * 33))
    assert used is True
    assert bank.labels[:6] == ["ok", "DIP 2", "x", "DIP 4", "DIP 5", "DIP 6"]
    assert len(logged(log, "ignoring invalid label")) == 3, log
    used, s, bank, log = corrupt('{"label": "pump"}')
    assert bank.labels[0] == "DIP 1" and logged(log, "ignoring labels, not a list"), log


def test_missing_lists_keep_board_defaults():
    used, s, bank, log = corrupt('{"name": "only-a-name"}')
    assert used is True and s.name == "only-a-name"
    assert list(bank.direction) == [0] * 16
    assert logged(log, "no direction and pull lists"), log


def test_lists_for_another_board_apply_to_the_ios_both_have():
    text = json.dumps({"name": "n", "dir": [0] * 9 + [1], "pull": [1] * 8 + [0, 2]})
    used, s, bank, log = corrupt(text)
    assert used is True
    assert bank.direction[9] == 1 and bank.pull[9] == 2
    assert list(bank.direction[10:]) == [0] * 6
    assert logged(log, "lists are for 10/10 IOs, the board has 16"), log


def test_a_settings_file_that_cannot_be_opened_says_why():
    d = scratch_dir("settings9")
    os.mkdir(d + "/settings.json")  # not a file
    try:
        s, _, log = make(d)
        assert settings_json.load(s) is False
        assert s.name == DEFAULT
        assert logged(log, "settings: cannot read " + d + "/settings.json"), log
    finally:
        os.rmdir(d + "/settings.json")


def test_a_stale_temporary_file_does_not_matter():
    d = scratch_dir("settings4")
    s, bank, _ = make(d)
    s.name = "saved"
    s.save()
    write(d + "/settings.json.tmp", '{"name": "half')  # a save that lost power
    s2, _, log = make(d)
    assert settings_json.load(s2) is True
    assert s2.name == "saved"
    assert log == []
    s2.name = "next"
    assert s2.save() is True
    assert sorted(os.listdir(d)) == ["settings.json"]


def test_only_the_temporary_file_left_is_used():
    # FAT cannot rename over a file: save removes the old one first. A power cut right
    # then leaves only the complete temporary file.
    d = scratch_dir("settings5")
    write(d + "/settings.json.tmp", json.dumps({"name": "from-tmp", "dir": [0] * 16,
                                                "pull": [1] * 8 + [2] * 8}))
    s, bank, log = make(d)
    assert settings_json.load(s) is True
    assert s.name == "from-tmp" and bank.pull[15] == 2
    assert logged(log, "no " + d + "/settings.json, using " + d + "/settings.json.tmp"), log


def test_a_half_written_temporary_file_alone_is_not_used():
    d = scratch_dir("settings6")
    write(d + "/settings.json.tmp", '{"name": "ha')
    s, _, log = make(d)
    assert settings_json.load(s) is False
    assert s.name == DEFAULT
    assert logged(log, "settings.json.tmp is not valid JSON"), log


class FatOs:
    """os as FAT has it: rename refuses to replace an existing file."""

    def __init__(self):
        self.calls = []

    def rename(self, old, new):
        self.calls.append(("rename", old, new))
        try:
            os.stat(new)
        except OSError:
            return os.rename(old, new)
        raise OSError(17)  # EEXIST

    def remove(self, path):
        self.calls.append(("remove", path))
        os.remove(path)


def test_save_works_where_rename_cannot_replace_a_file():
    d = scratch_dir("settings7")
    s, _, _ = make(d)
    fat = FatOs()
    real_os = settings_module.os
    settings_module.os = fat
    try:
        s.name = "first"
        assert s.save() is True
        s.name = "second"
        assert s.save() is True
    finally:
        settings_module.os = real_os
    assert ("remove", d + "/settings.json") in fat.calls
    assert sorted(os.listdir(d)) == ["settings.json"]
    assert read_json(d + "/settings.json")["name"] == "second"


def test_save_that_cannot_write_says_so_and_does_not_raise():
    d = scratch_dir("settings8")
    s, _, log = make(d + "/missing/folder")
    assert s.save() is False
    assert logged(log, "cannot save"), log


def test_state_dir_may_be_the_current_folder():
    s, _, _ = make("")
    assert s.path == "settings.json"
    s, _, _ = make("/flash/")
    assert s.path == "/flash/settings.json"


def test_valid_names():
    assert is_valid_name("kitchen")
    assert is_valid_name("Kitchen light #2 (east) ~ 100%")
    assert is_valid_name("x" * 32)
    assert is_valid_name(" ")
    for bad in ("", "x" * 33, "tab\there", "new\nline", "caf\u00e9", "\x7f", None, 5, b"x"):
        assert not is_valid_name(bad), bad
