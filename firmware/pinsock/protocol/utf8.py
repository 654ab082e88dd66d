# Strict UTF-8 (RFC 3629, the Unicode standard's table 3-7): what the protocol's text
# must be. Pure and allocation-free: it reads bytes by index and keeps small ints.
#
# MicroPython's bytes.decode() checks much less than CPython's: it takes overlong
# forms ("\xc0\xaf", a "/" in disguise), UTF-16 surrogates ("\xed\xa0\x80") and code
# points above U+10FFFF ("\xf4\x90\x80\x80") as text, and keeps their bytes. RFC 6455
# requires a text frame and a close reason to be valid UTF-8 (8.1: else close 1007),
# and the device must never send back bytes that are not: so whatever turns bytes
# into a command checks them here first.


def valid_prefix(data, start=0, end=-1):
    """Where the first byte from `start` is that does not begin a complete, valid UTF-8
    sequence within data[start:end] (end -1: all of `data`); `end` when all of it is
    valid. `data`: bytes, bytearray or memoryview."""
    if end < 0:
        end = len(data)
    i = start
    while i < end:
        b = data[i]
        if b < 0x80:  # ASCII, nearly every command: one comparison
            i += 1
            continue
        # The second byte's range depends on the first (table 3-7): this is what
        # refuses overlong forms, surrogates and code points past U+10FFFF.
        if 0xC2 <= b <= 0xDF:
            n, lo, hi = 1, 0x80, 0xBF
        elif b == 0xE0:
            n, lo, hi = 2, 0xA0, 0xBF  # E0 80..9F would be overlong
        elif b == 0xED:
            n, lo, hi = 2, 0x80, 0x9F  # ED A0..BF: surrogates D800..DFFF
        elif 0xE1 <= b <= 0xEF:
            n, lo, hi = 2, 0x80, 0xBF
        elif b == 0xF0:
            n, lo, hi = 3, 0x90, 0xBF  # F0 80..8F would be overlong
        elif 0xF1 <= b <= 0xF3:
            n, lo, hi = 3, 0x80, 0xBF
        elif b == 0xF4:
            n, lo, hi = 3, 0x80, 0x8F  # F4 90.. is past U+10FFFF
        else:  # 80..C1 (a continuation byte, or overlong C0 C1), F5..FF
            return i
        if i + n >= end:
            return i  # cut short
        c = data[i + 1]
        if c < lo or c > hi:
            return i
        for k in range(i + 2, i + n + 1):
            c = data[k]
            if c < 0x80 or c > 0xBF:
                return i
        i += n + 1
    return end


def is_valid(data, start=0, end=-1):
    """True when data[start:end] (end -1: all of it) is strict UTF-8."""
    if end < 0:
        end = len(data)
    return valid_prefix(data, start, end) == end


def is_valid_text(text):
    """True when the bytes of a str are strict UTF-8: a str that a lenient decode made
    (MicroPython's keeps the bytes it was given) may hold any. On CPython a str holding
    lone surrogates cannot even be encoded."""
    try:
        data = text.encode()
    except UnicodeError:
        return False
    return is_valid(data)
