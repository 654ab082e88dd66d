# Reading settings.json at boot (settings.py holds what lives on and saves it). Boot-only:
# imported by startup.py and forgotten once the device serves (app.BOOT_ONLY_MODULES),
# so a board that loads .mpy files does not keep this bytecode in its heap.
#
# Never raises: whatever is wrong with the file, the device boots (with the board's
# defaults for what could not be used) and the log says why.
import json

from ..logic.settings import is_valid_name

_ENOENT = 2  # errno: no such file

# What _read found instead of settings.
_MISSING = object()
_UNREADABLE = object()


def load(settings):
    """Apply the stored settings to `settings` (its name) and its bank (labels,
    directions, pulls). Returns True
    when a file was used."""
    log = settings.log
    path = settings.path
    data = _read(path, log)
    if data is _MISSING:
        # A save on a file system whose rename cannot replace a file (FAT) removes
        # the old file first; a power cut right then leaves only the new one.
        tmp = path + settings.tmp_suffix
        data = _read(tmp, log)
        if data is _MISSING:
            log("settings: no %s, using defaults" % path)
            return False
        if data is not _UNREADABLE:
            log("settings: no %s, using %s" % (path, tmp))
    if data is _UNREADABLE:
        return False
    if not isinstance(data, dict):
        log("settings: %s is not an object, using defaults" % path)
        return False
    name = data.get("name")
    if is_valid_name(name):
        settings.name = name
    elif name is not None:
        log("settings: ignoring invalid name")
    if data.get("ha") == 0:  # removed from Home Assistant (sqh=0)
        settings.announce = False
    bank = settings.bank
    labels = data.get("label")
    if isinstance(labels, list):
        for io in range(min(bank.count, len(labels))):
            label = labels[io]
            if is_valid_name(label):
                bank.set_label(io, label)
            elif label is not None:
                log("settings: ignoring invalid label of io %d" % io)
    elif labels is not None:
        log("settings: ignoring labels, not a list")
    functions = data.get("fn")
    if isinstance(functions, str):
        settings.keep_functions = True
        for io in range(min(bank.count, len(functions))):
            fn = "dawcb".find(functions[io])
            if fn >= 0 and bank.fns[io] >> fn & 1:
                bank.function[io] = fn  # set up when the bank starts
            else:
                log("settings: ignoring function of io %d, not allowed" % io)
    elif functions is not None:
        log("settings: ignoring functions, not a string")
    dirs = data.get("dir")
    pulls = data.get("pull")
    if not (isinstance(dirs, list) and isinstance(pulls, list)):
        log("settings: no direction and pull lists, using board defaults")
        return True
    if len(dirs) != bank.count or len(pulls) != bank.count:
        log("settings: lists are for %d/%d IOs, the board has %d"
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
            log("settings: ignoring direction/pull of io %d, not allowed" % io)
    return True


def _read(path, log):
    # The parsed file; _MISSING when there is none; _UNREADABLE (logged) when bad.
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as exc:
        if exc.args and exc.args[0] == _ENOENT:
            return _MISSING
        log("settings: cannot read %s (%s), using defaults" % (path, exc))
    except ValueError:  # also UnicodeError, a subclass on both Pythons
        log("settings: %s is not valid JSON, using defaults" % path)
    except Exception as exc:  # MemoryError, too deeply nested: still boot
        log("settings: cannot read %s (%r), using defaults" % (path, exc))
    return _UNREADABLE
