"""Drop the static symbol table and debug sections from a 64-bit little-endian ELF shared library.

What `strip --strip-unneeded` does for a Python extension module, in Python: the build machine
may be x86_64 while the package is arm64, and binutils' `strip` only handles its own
architecture. The dynamic loader never reads `.symtab`, `.strtab` or `.debug_*` (symbols are
resolved through `.dynsym`); they only name functions in a debugger or a Rust panic backtrace.
cryptography's Rust binding carries ~3 MB of them (~0.7 MB zipped).

Conservative on purpose: only non-allocated sections that lie after every loadable segment and
after every allocated section in the header table are removed, so no address, segment, dynamic
symbol or relocation changes; any other layout leaves the file untouched.
"""

from __future__ import annotations

import struct
from typing import Final

_EHDR: Final = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR: Final = struct.Struct("<IIQQQQQQ")
_SHDR: Final = struct.Struct("<IIQQQQIIQQ")
_ELF64_LE: Final = b"\x7fELF\x02\x01"
_ET_DYN: Final = 3
_SHT_SYMTAB: Final = 2
_SHT_NOBITS: Final = 8
_SHF_ALLOC: Final = 0x2
_SHF_INFO_LINK: Final = 0x40
_SHN_LORESERVE: Final = 0xFF00


def strip_symbols(data: bytes) -> bytes:
    """`data` without `.symtab`, its string table and `.debug_*`; `data` itself when that is not safely possible."""
    if len(data) < _EHDR.size or not data.startswith(_ELF64_LE):
        return data
    header = list(_EHDR.unpack_from(data))
    e_type, e_phoff, e_shoff = header[1], header[5], header[6]
    e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx = header[9], header[10], header[11], header[12], header[13]
    if e_type != _ET_DYN or e_shentsize != _SHDR.size or e_phentsize != _PHDR.size:
        return data
    if e_shnum == 0 or e_shstrndx >= min(e_shnum, _SHN_LORESERVE) or e_shoff + e_shnum * _SHDR.size > len(data):
        return data
    segments = [_PHDR.unpack_from(data, e_phoff + i * _PHDR.size) for i in range(e_phnum)]
    loaded_end = max((offset + filesz for _, _, offset, _, _, filesz, _, _ in segments), default=0)
    if e_phoff + e_phnum * _PHDR.size > loaded_end:
        return data
    sections = [list(_SHDR.unpack_from(data, e_shoff + i * _SHDR.size)) for i in range(e_shnum)]
    names = sections[e_shstrndx]

    def name(section: list[int]) -> bytes:
        start = names[4] + section[0]
        return data[start : data.index(b"\0", start)]

    dropped: set[int] = set()
    for index, section in enumerate(sections):
        if section[2] & _SHF_ALLOC:
            continue
        if section[1] == _SHT_SYMTAB:
            dropped.add(index)
            strings = section[6]
            if 0 < strings < e_shnum and strings != e_shstrndx and not sections[strings][2] & _SHF_ALLOC:
                dropped.add(strings)
        elif name(section).startswith(b".debug"):
            dropped.add(index)
    if not dropped:
        return data
    first = min(dropped)
    if any(s[2] & _SHF_ALLOC for s in sections[first:]):
        return data  # renumbering would shift indices that dynamic symbols may hold
    if any(sections[i][1] != _SHT_NOBITS and sections[i][4] < loaded_end for i in dropped):
        return data
    new_index: dict[int, int] = {}
    for index in range(e_shnum):
        if index not in dropped:
            new_index[index] = len(new_index)

    out = bytearray(data[:loaded_end])
    kept: list[list[int]] = []
    for index, section in enumerate(sections):
        if index in dropped:
            continue
        section = section[:]
        link, info, flags = section[6], section[7], section[2]
        if link in dropped or (flags & _SHF_INFO_LINK and info in dropped):
            return data  # a kept section refers to a dropped one
        section[6] = new_index.get(link, link) if link >= first else link
        if flags & _SHF_INFO_LINK and info >= first:
            section[7] = new_index[info]
        if index > 0 and section[1] != _SHT_NOBITS and section[4] >= loaded_end:
            align = max(1, section[8])
            out += b"\0" * (-len(out) % align)
            content = data[section[4] : section[4] + section[5]]
            section[4] = len(out)
            out += content
        kept.append(section)
    out += b"\0" * (-len(out) % 8)
    header[6] = len(out)
    header[12] = len(kept)
    header[13] = new_index[e_shstrndx]
    for section in kept:
        out += _SHDR.pack(*section)
    _EHDR.pack_into(out, 0, *header)
    return bytes(out)
