"""Names, e-mail addresses, phone numbers and postcodes per country, built column-wise.

Everything here works on whole arrays (pyarrow compute kernels, numpy
indexing); nothing loops over persons. Per-country work loops over the twelve
countries only.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.simulate.calendar import COUNTRIES, MARKETS

_FEMALE = {
    "DK": "Anne Mette Hanne Camilla Sofie Ida Freja Louise Maja Signe Søs Emma",
    "DE": "Anna Julia Laura Lena Katrin Sabine Jürgen Lea Mia Hannah Sophie Marie",
    "FR": "Camille Léa Chloé Manon Inès Julie Claire Amélie Sophie Emma Louise Marie",
    "IT": "Giulia Francesca Chiara Sara Martina Alessia Elena Valentina Sofia Aurora Anna Laura",
    "ES": "Lucía María Carmen Paula Laura Marta Sofía Elena Ana Cristina Sara Julia",
    "NL": "Sanne Lotte Anouk Fleur Eva Lisa Emma Julia Sophie Femke Iris Noor",
    "GB": "Olivia Amelia Isla Emily Sophie Charlotte Jessica Grace Lucy Hannah Chloe Ella",
    "US": "Emily Jessica Ashley Sarah Madison Olivia Emma Ava Abigail Megan Lauren Hannah",
    "AU": "Charlotte Olivia Mia Chloe Isla Ruby Sienna Zoe Grace Amelia Sophie Ella",
    "SE": "Anna Eva Maria Karin Sara Emma Elsa Maja Linnea Ebba Wilma Astrid",
    "PL": "Anna Katarzyna Małgorzata Agnieszka Zofia Julia Maja Lena Alicja Natalia Ewa Ola",
    "JP": "Yui Aoi Sakura Hina Yuna Mei Rin Haruka Yuka Ayaka Misaki Nana",
}
_MALE = {
    "DK": "Lars Jens Søren Mads Anders Peter", "DE": "Thomas Michael Stefan Lukas Jonas Felix",
    "FR": "Pierre Louis Hugo Lucas Thomas Nicolas", "IT": "Marco Luca Giuseppe Andrea Matteo Paolo",
    "ES": "Javier Carlos José Pablo Diego Alejandro", "NL": "Daan Sem Lars Thijs Bram Jeroen",
    "GB": "Oliver Harry George Jack James William", "US": "Michael James John Robert David Daniel",
    "AU": "Jack William Oliver Noah Thomas Lachlan", "SE": "Erik Lars Anders Johan Karl Oscar",
    "PL": "Piotr Krzysztof Tomasz Jakub Paweł Michał", "JP": "Haruto Sota Yuto Ren Takumi Kenji",
}
_LAST = {
    "DK": "Jensen Nielsen Hansen Pedersen Andersen Christensen Larsen Sørensen Rasmussen Jørgensen",
    "DE": "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann",
    "FR": "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau",
    "IT": "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco",
    "ES": "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Martín",
    "NL": "de Jong Jansen de Vries van den Berg van Dijk Bakker Janssen Visser Smit Meijer",
    "GB": "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson",
    "US": "Smith Johnson Williams Brown Jones Miller Davis Garcia Rodriguez Wilson",
    "AU": "Smith Jones Williams Brown Wilson Taylor Johnson White Martin Anderson",
    "SE": "Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Gustafsson",
    "PL": "Nowak Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński Szymański Woźniak",
    "JP": "Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato",
}
_NL_PARTICLES = frozenset({"de", "van", "den"})
DOMAINS = np.array(["gmail.com", "hotmail.com", "outlook.com", "yahoo.com", "icloud.com", "mail.com"])


def _split(text: str, country: str) -> list[str]:
    words = text.split()
    if country != "NL":
        return words
    out: list[str] = []
    prefix: list[str] = []
    for w in words:  # Dutch surnames keep their "de"/"van den" particles
        if w in _NL_PARTICLES:
            prefix.append(w)
            continue
        out.append(" ".join([*prefix, w]))
        prefix = []
    return out


def draw_names(rng: np.random.Generator, country: np.ndarray,
               female: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """First and last names drawn from the lists of each person's country and gender."""
    firsts, lasts, sels = [], [], []
    for ci, c in enumerate(COUNTRIES):
        sel = np.flatnonzero(country == ci)
        fem, mal, sur = (np.array(_split(src[c], c)) for src in (_FEMALE, _MALE, _LAST))
        is_f = female[sel]
        firsts.append(pa.array(np.where(is_f, fem[rng.integers(0, fem.size, sel.size)],
                                        mal[rng.integers(0, mal.size, sel.size)])))
        lasts.append(pa.array(sur[rng.integers(0, sur.size, sel.size)]))
        sels.append(sel)
    return scatter(firsts, sels), scatter(lasts, sels)


def ascii_handle(text: pa.Array) -> pa.Array:
    """Lower-case ASCII letters only (for e-mail local parts): 'Søren' -> 'sren', 'José' -> 'jose'."""
    folded = pc.utf8_normalize(pc.utf8_lower(text), "NFKD")
    return pc.replace_substring_regex(folded, "[^a-z]", "")


def draw_emails(rng: np.random.Generator, first: pa.Array, last: pa.Array) -> pa.Array:
    """Canonical (lower-case, trimmed) e-mail addresses; a number keeps them unique."""
    n = len(first)
    number = pc.cast(pa.array(rng.integers(0, 10_000, n)), pa.string())
    style = rng.integers(0, 3, n)
    f, ln = ascii_handle(first), ascii_handle(last)
    initial = pc.utf8_slice_codeunits(f, 0, 1)
    sep = pa.array(np.where(style == 0, ".", np.where(style == 1, "_", "")))
    head = pc.if_else(pa.array(style == 2), initial, f)
    domain = pa.array(DOMAINS[rng.integers(0, DOMAINS.size, n)])
    return pc.binary_join_element_wise(head, sep, ln, number, "@", domain, "")


def unique_emails(emails: pa.Array) -> pa.Array:
    """Make e-mail addresses unique by appending ``.2``, ``.3``... to the local part of repeats."""
    codes = pc.dictionary_encode(emails).indices.to_numpy()
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
    rank = np.arange(codes.size) - np.maximum.accumulate(np.where(starts, np.arange(codes.size), 0))
    dup_rank = np.empty_like(rank)
    dup_rank[order] = rank
    dup = np.flatnonzero(dup_rank > 0)
    if dup.size == 0:
        return emails
    parts = pc.split_pattern(emails.take(pa.array(dup)), "@", max_splits=1)
    tag = pc.cast(pa.array(dup_rank[dup] + 1), pa.string())
    local, domain = pc.list_element(parts, 0), pc.list_element(parts, 1)
    fixed = pc.binary_join_element_wise(local, ".", tag, "@", domain, "")
    return scatter([emails.filter(pa.array(dup_rank == 0)), fixed],
                   [np.flatnonzero(dup_rank == 0), dup])


def scatter(chunks: list[pa.Array], positions: list[np.ndarray]) -> pa.Array:
    """One array holding ``chunks[k][i]`` at ``positions[k][i]`` (the positions cover 0..n-1)."""
    pos = np.concatenate(positions)
    whole = pa.concat_arrays([c.cast(pa.string()) for c in chunks])
    return whole.take(pa.array(np.argsort(pos, kind="stable")))


def digits(rng: np.random.Generator, n: int, width: int, first_min: int = 0) -> pa.Array:
    """Random digit strings of fixed ``width`` whose first digit is at least ``first_min``."""
    low = first_min * 10 ** (width - 1)
    values = rng.integers(low, 10**width, n)
    return pc.utf8_lpad(pc.cast(pa.array(values), pa.string()), width, "0")


#: national significant number length and the leading digit of mobile numbers
_PHONE = {"DK": (8, 2), "DE": (11, 1), "FR": (9, 6), "IT": (10, 3), "ES": (9, 6), "NL": (9, 6),
          "GB": (10, 7), "US": (10, 2), "AU": (9, 4), "SE": (9, 7), "PL": (9, 5), "JP": (10, 9)}
_TRUNK_ZERO = {"DE", "FR", "NL", "GB", "AU", "SE", "JP"}


def national_numbers(rng: np.random.Generator, country: np.ndarray) -> pa.Array:
    """A mobile number per person without country code or trunk prefix (digits only)."""
    chunks, sels = [], []
    for ci, c in enumerate(COUNTRIES):
        sel = np.flatnonzero(country == ci)
        width, lead = _PHONE[c]
        chunks.append(pc.binary_join_element_wise(str(lead), digits(rng, sel.size, width - 1), ""))
        sels.append(sel)
    return scatter(chunks, sels)


def format_phones(national: pa.Array, country: np.ndarray, style: np.ndarray) -> pa.Array:
    """Phones as people type them: 0 '+45 12 34 56 78', 1 '004512345678', 2 '+4512345678', 3 local."""
    chunks, sels = [], []
    for ci, c in enumerate(COUNTRIES):
        sel = np.flatnonzero(country == ci)
        num = national.take(pa.array(sel))
        code = MARKETS[c][4]
        width = _PHONE[c][0]
        groups = [pc.utf8_slice_codeunits(num, i, min(i + 2, width)) for i in range(0, width, 2)]
        spaced = pc.binary_join_element_wise(f"+{code}", *groups, " ")
        local = pc.binary_join_element_wise("0" if c in _TRUNK_ZERO else "", num, "")
        st = style[sel]
        choices = [spaced, pc.binary_join_element_wise(f"00{code}", num, ""),
                   pc.binary_join_element_wise(f"+{code}", num, ""), local]
        value = choices[0]
        for k in (1, 2, 3):
            value = pc.if_else(pa.array(st == k), choices[k], value)
        chunks.append(value)
        sels.append(sel)
    return scatter(chunks, sels)


def draw_postcodes(rng: np.random.Generator, country: np.ndarray) -> pa.Array:
    """Postcodes in each country's format (DK 4 digits, NL '1234 AB', GB 'AB12 3CD', JP '123-4567'...)."""
    letters = np.array(list("ABCDEFGHJKLMNPRSTUWXYZ"))
    chunks, sels = [], []
    for ci, c in enumerate(COUNTRIES):
        sel = np.flatnonzero(country == ci)
        n = sel.size
        if c in ("DK", "AU"):
            code = digits(rng, n, 4, 1)
        elif c in ("DE", "FR", "IT", "ES", "US"):
            code = digits(rng, n, 5, 1)
        elif c == "NL":
            pair = np.char.add(letters[rng.integers(0, 22, n)], letters[rng.integers(0, 22, n)])
            code = pc.binary_join_element_wise(digits(rng, n, 4, 1), pa.array(pair), " ")
        elif c == "GB":
            head = np.char.add(letters[rng.integers(0, 22, n)], letters[rng.integers(0, 22, n)])
            tail = np.char.add(letters[rng.integers(0, 22, n)], letters[rng.integers(0, 22, n)])
            code = pc.binary_join_element_wise(
                pc.binary_join_element_wise(pa.array(head), digits(rng, n, 2, 1), ""),
                pc.binary_join_element_wise(digits(rng, n, 1, 1), pa.array(tail), ""), " ")
        elif c == "SE":
            code = pc.binary_join_element_wise(digits(rng, n, 3, 1), digits(rng, n, 2), " ")
        elif c == "PL":
            code = pc.binary_join_element_wise(digits(rng, n, 2), digits(rng, n, 3), "-")
        else:
            code = pc.binary_join_element_wise(digits(rng, n, 3, 1), digits(rng, n, 4), "-")
        chunks.append(code)
        sels.append(sel)
    return scatter(chunks, sels)
