# What the device persists on its flash: IO directions, pulls and its name.
#
# The file is replaced atomically: the new content goes to a temporary file which is
# then renamed over the old one, so a power cut leaves either the old or the new file,
# never half of one. A missing or corrupt file boots with defaults and says why.
import json
import os


class Settings:
    file_name = "settings.json"
    max_name_len = 32

    def __init__(self, state_dir, bank, default_name, log=print):
        self.path = _join(state_dir, self.file_name)
        self.bank = bank
        self.name = default_name
        self.log = log

    def load(self):
        """Apply the stored settings to the bank. Returns True when a file was used."""
        try:
            with open(self.path) as f:
                data = json.load(f)
        except OSError:
            self.log("settings: no %s, using defaults" % self.path)
            return False
        except ValueError:
            self.log("settings: %s is not valid JSON, using defaults" % self.path)
            return False
        if not isinstance(data, dict):
            self.log("settings: %s is not an object, using defaults" % self.path)
            return False
        name = data.get("name")
        if is_valid_name(name):
            self.name = name
        elif name is not None:
            self.log("settings: ignoring invalid name")
        bank = self.bank
        dirs = data.get("dir")
        pulls = data.get("pull")
        if not (isinstance(dirs, list) and isinstance(pulls, list)):
            self.log("settings: no direction and pull lists, using board defaults")
            return True
        for io in range(min(bank.count, len(dirs), len(pulls))):
            d = dirs[io]
            p = pulls[io]
            if d in bank.allowed_dirs[io] and p in bank.allowed_pulls[io]:
                bank.direction[io] = d
                bank.pull[io] = p
            else:
                self.log("settings: ignoring direction/pull of io %d, not allowed" % io)
        return True

    def save(self):
        bank = self.bank
        data = {"name": self.name, "dir": list(bank.direction), "pull": list(bank.pull)}
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.rename(tmp, self.path)


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
