"""Resident identity card numbers (GB 11643-1999): one check-character rule for every module."""

RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.1"  # 居民身份证号码
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"


def id_check_char(first17: str) -> str:
    """The check character of the first 17 digits: weighted sum mod 11 mapped to 1 0 X 9 8 7 6 5 4 3 2."""
    return ID_CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]
