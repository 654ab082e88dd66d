# What the device persists on its flash: IO directions, pulls and its name.
#
#   settings.json   {"name": "kitchen", "dir": [0, 0, ..., 1], "pull": [1, 1, ..., 0]}
#
# The file is replaced atomically: the new content goes to a temporary file which is
# then renamed over the old one, so a power cut leaves either the old or the new file,
# never half of one. A missing or corrupt file boots with defaults and says why.
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

    def load(self):
        """Apply the stored settings to the bank. Returns True when a file was used.

        Never raises: whatever is wrong with the file, the device boots (with the
        board's defaults for what could not be used) and the log says why.
        """
        data = self._read(self.path)
        if data is _MISSING:
            # A save on a file system whose rename cannot replace a file (FAT) removes
            # the old file first; a power cut right then leaves only the new one.
            tmp = self.path + self.tmp_suffix
            data = self._read(tmp)
            if data is _MISSING:
                self.log("settings: no %s, using defaults" % self.path)
                return False
            if data is not _UNREADABLE:
                self.log("settings: no %s, using %s" % (self.path, tmp))
        if data is _UNREADABLE:
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
        if len(dirs) != bank.count or len(pulls) != bank.count:
            self.log("settings: lists are for %d/%d IOs, the board has %d"
                     % (len(dirs), len(pulls), bank.count))
        for io in range(min(bank.count, len(dirs), len(pulls))):
            d = dirs[io]
            p = pulls[io]
            # `type(...) is int` also refuses true/false and 1.0, which `in` would let
            # through (and a bytearray cannot hold 1.0).
            if (type(d) is int and type(p) is int and d in bank.allowed_dirs[io]
                    and p in bank.allowed_pulls[io]):
                bank.direction[io] = d
                bank.pull[io] = p
            else:
                self.log("settings: ignoring direction/pull of io %d, not allowed" % io)
        return True

    def _read(self, path):
        # The parsed file; _MISSING when there is none; _UNREADABLE (logged) when bad.
        try:
            with open(path) as f:
                return json.load(f)
        except OSError as exc:
            if exc.args and exc.args[0] == _ENOENT:
                return _MISSING
            self.log("settings: cannot read %s (%s), using defaults" % (path, exc))
        except ValueError:  # also UnicodeError, a subclass on both Pythons
            self.log("settings: %s is not valid JSON, using defaults" % path)
        except Exception as exc:  # MemoryError, too deeply nested: still boot
            self.log("settings: cannot read %s (%r), using defaults" % (path, exc))
        return _UNREADABLE

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
                # FAT's rename refuses to replace a file: remove it first. load()
                # picks up the temporary file if power fails in between.
                os.remove(self.path)
                os.rename(tmp, self.path)
        except OSError as exc:  # flash full or failing: keep running on what is set
            self.log("settings: cannot save %s: %s" % (self.path, exc))
            return False
        return True


_ENOENT = 2  # errno: no such file

# What _read found instead of settings.
_MISSING = object()
_UNREADABLE = object()


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
