# What the device persists on its flash: IO directions, pulls and its name.
#
#   settings.json   {"name": "kitchen", "dir": [0, 0, ..., 1], "pull": [1, 1, ..., 0],
#                    "label": [null, ..., "pump", null, ...]}
#                   and "ha": 0 once `sqh=0` removed the board from Home Assistant,
#                   "fn": "ddddddddadwcbddd" once an IO's function is not the board's
#
# An IO's label is null while it is the board's own (board.json), so a new board
# config's labels show for every IO its owner did not name.
#
# The file is replaced atomically: the new content goes to a temporary file which is
# then renamed over the old one, so a power cut leaves either the old or the new file,
# never half of one. A missing or corrupt file boots with defaults and says why.
#
# This module lives on: commands.py renames and marks changes through a Settings, and
# lifecycle.py's housekeeping saves them (coalesced: Settings.min_save_interval_ms).
# Reading the file at boot is boot/settings_json.py load(), boot-only code forgotten
# once the device serves.
import json
import os

from ..compat import ticks_diff, ticks_ms


class Settings:
    file_name = "settings.json"
    # The temporary file a save writes first; `file_name` + this suffix.
    tmp_suffix = ".tmp"
    #: Longest device name and IO label, in characters (printable ASCII only). Each
    #: label the owner sets is held in RAM (16 IOs: up to 0.5 KB) and in settings.json.
    max_name_len = 32
    #: Saves are coalesced, to spare the flash (docs/SECURITY.md, the write budget): a
    #: change is saved at the next once-a-second housekeeping (lifecycle.py
    #: keep_house), with every change made until then, so a burst of writes is one
    #: save; but never sooner than this many ms after the previous save. While writes
    #: keep coming that is one save per interval, at most 6 a minute, and the last
    #: values are always saved. A power cut before a change is saved loses it.
    min_save_interval_ms = 10000
    # The IOs' functions are saved once one was set (`f<h>=`) or the file had them.
    keep_functions = False

    def __init__(self, state_dir, bank, default_name, log=print):
        self.path = _join(state_dir, self.file_name)
        self.bank = bank
        self.name = default_name
        # Announced to Home Assistant (MQTT discovery); False after `sqh=0` removed the
        # board, saved as "ha": 0 (absent: True).
        self.announce = True
        self.log = log
        self.pending = False  # changed since the last save (changed())
        self._saved_at = None  # ticks_ms of the last save; None: none since boot

    def changed(self):
        """Something to save changed: saved once save_due()."""
        self.pending = True

    def save_due(self, now):
        """True when there are changes to save and the last save is long enough ago
        at `now` (ticks_ms)."""
        if not self.pending:
            return False
        if self._saved_at is None:
            return True
        since = ticks_diff(now, self._saved_at)
        return not 0 <= since < self.min_save_interval_ms  # < 0: ticks_ms wrapped

    def save(self):
        """Write the settings atomically, now. Returns False (and logs) when it could
        not; the change is then not tried again until the next one."""
        self.pending = False
        self._saved_at = ticks_ms()
        bank = self.bank
        data = {"name": self.name, "dir": list(bank.direction), "pull": list(bank.pull),
                "label": [None if label is board else label
                          for label, board in zip(bank.labels, bank.board_labels)]}
        if self.keep_functions:
            data["fn"] = "".join("dawcb"[fn] for fn in bank.function)
        if not self.announce:
            data["ha"] = 0
        tmp = self.path + self.tmp_suffix
        try:
            with open(tmp, "w") as f:
                json.dump(data, f)
            try:
                os.rename(tmp, self.path)
            except OSError:
                # FAT's rename refuses to replace a file: remove it first. The boot's
                # settingsfile.load() picks up the temporary file if power fails in
                # between.
                os.remove(self.path)
                os.rename(tmp, self.path)
        except OSError as exc:  # flash full or failing: keep running on what is set
            self.log("settings: cannot save %s: %s" % (self.path, exc))
            return False
        return True


def is_valid_name(name):
    if not isinstance(name, str) or not 0 < len(name) <= Settings.max_name_len:
        return False
    for ch in name:
        if not " " <= ch <= "~":
            return False
    return True


def _join(folder, name):
    if not folder:
        return name
    return folder.rstrip("/") + "/" + name
