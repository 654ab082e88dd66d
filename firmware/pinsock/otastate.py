# The update state, ota.json in the root of the flash (docs/OTA.md), as the app sees it:
# what `so` reports, the confirmation of a new version, the switch to an uploaded one.
# The loader (main.py) reads and writes the same file with its own few lines, since an
# update never replaces the loader. Imported when needed and forgotten after
# (compat.forget_module): nothing of it stays in the heap.
#
#   active    the slot that runs ("a", "b"; "" the root, as make deploy installs)
#   pending   the slot of a new version not confirmed yet, or ""
#   tries     boots the pending slot has had (the loader counts them)
#   versions  {slot: version} of what the updates put where
#   why       why the last try of the pending slot failed ("" when none did)
#   failed    the slot last rolled back from, or ""
import json
import os

from .compat import forget_module

FILE_NAME = "ota.json"
#: Seconds a new version serves before it confirms itself (board config ota_confirm_s).
CONFIRM_S = 30
SLOTS = ("a", "b")
#: A new version's try runs under the watchdog (the loader starts it: otaboot.py
#: WATCHDOG_MS) even where config.json's watchdog_ms is 0: the firmware then feeds one
#: of this timeout (ms; hardware/net.py) for the rest of that boot, since a started
#: watchdog cannot be stopped. The boots after the confirmation have none again.
TRY_WATCHDOG_MS = 8000


def path_in(root):
    return root.rstrip("/") + "/" + FILE_NAME if root else FILE_NAME


def load(root):
    """The state, or None when there is none (never updated)."""
    try:
        with open(path_in(root)) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and "active" in state else None


def save(root, state):
    """Replace the state by one rename: a power cut leaves the old one or the new."""
    path = path_in(root)
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps(state))
    os.rename(path + ".tmp", path)


def running_slot(root):
    """The slot the loader (main.py, otaboot.py) started: the folder of the root that
    is the current one ("" for the root itself, or a folder elsewhere)."""
    cwd = os.getcwd()
    root = root.rstrip("/")
    if cwd.startswith(root + "/") and cwd[len(root) + 1:] in SLOTS:
        return cwd[len(root) + 1:]
    return ""


def fresh(running):
    return {"active": running, "pending": "", "tries": 0, "versions": {}, "why": "",
            "failed": ""}


def other_slot(running):
    """The slot an upload goes to while `running` runs."""
    return "b" if running == "a" else "a"


def on_trial(state, running):
    return state is not None and state.get("pending") == running != state.get("active")


def describe(state, running):
    """`so`'s answer: {"s": running slot, "t": "1" on trial, "p": the version in the
    other slot (the previous one), "r": the last rollback, "<version>: <why>"}."""
    if state is None:
        state = fresh(running)
    versions = state.get("versions") or {}
    other = state["active"] if on_trial(state, running) else ""
    if not other:
        for slot in versions:
            if slot != running:
                other = slot
    failed = state.get("failed") or ""
    rollback = ""
    if failed:
        rollback = "%s: %s" % (versions.get(failed, "?"), state.get("why", ""))
    return '{"s":%s,"t":"%d","p":%s,"r":%s}' % (
        json.dumps(running), on_trial(state, running),
        json.dumps(versions.get(other, "") if other else ""), json.dumps(rollback))


def confirm(root, running, log=print):
    """The new version in `running` has served long enough: it stays. Returns the state
    now (None when there was nothing to confirm)."""
    state = load(root)
    if state is None or not on_trial(state, running):
        return None
    state["active"] = running
    state["pending"] = ""
    state["tries"] = 0
    state["why"] = ""
    state["failed"] = ""
    save(root, state)
    log("ota: version %s in slot %s confirmed" % (
        (state.get("versions") or {}).get(running, "?"), running))
    return state


async def confirm_later(trial, status):
    """A new version on its try (boot/startup.py ota_trial) confirms itself once it has served for
    ota_confirm_s: from then on the loader boots it for good. Then this module is
    forgotten."""
    import asyncio

    from .transport.http import listeners

    root, slot, seconds = trial
    while not listeners:  # started before the device serves: the time counts from then
        await asyncio.sleep_ms(100)  # pyright: ignore[reportAttributeAccessIssue]
    await asyncio.sleep_ms(seconds * 1000)  # pyright: ignore[reportAttributeAccessIssue]
    try:
        state = confirm(root, slot)
        if state is not None:
            status.ota = describe(state, slot)
    except Exception as exc:  # OSError: the flash; the next boot tries again
        print("ota: cannot confirm: %r" % exc)
    forget_module(__name__)
