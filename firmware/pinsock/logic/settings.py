# What the device persists on its flash: IO directions, pulls and its name.
#
#   settings.json   {"name": "kitchen", "dir": [0, 0, ..., 1], "pull": [1, 1, ..., 0]}
#
# The file is replaced atomically: the new content goes to a temporary file which is
# then renamed over the old one, so a power cut leaves either the old or the new file,
# never half of one. A missing or corrupt file boots with defaults and says why.
#
# This module lives on: commands.py renames and saves through a Settings. Reading the
# file at boot is settingsfile.load(), boot-only code forgotten once the device serves
# (app.BOOT_ONLY_MODULES).
import json
import os


class Settings:
    file_name = "settings.json"
    # The temporary file a save writes first; `file_name` + this suffix.
    tmp_suffix = ".tmp"
    # Longest device name, in characters (printable ASCII only).
    max_name_len = 32

    def __init__(self, state_dir, bank, default_name, log=print):
        self.path = _join(state_dir, self.file_name)
        self.bank = bank
        self.name = default_name
        self.log = log

    def save(self):
        """Write the settings atomically. Returns False (and logs) when it could not."""
        bank = self.bank
        data = {"name": self.name, "dir": list(bank.direction), "pull": list(bank.pull)}
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
