"""Small helpers of the dispute documents."""

from __future__ import annotations

from decimal import Decimal

_DIGITS = '零壹贰叁肆伍陆柒捌玖'
_UNITS = ('', '拾', '佰', '仟')
_SECTIONS = ('', '万', '亿', '万亿')


def _group_words(number: int) -> str:
    """Words of 1..9999, with 零 for inner zeros (1005 → 壹仟零伍)."""
    words, pending_zero = '', False
    for power in (3, 2, 1, 0):
        digit = number // 10 ** power % 10
        if digit == 0:
            pending_zero = bool(words)
            continue
        if pending_zero:
            words += '零'
            pending_zero = False
        words += _DIGITS[digit] + _UNITS[power]
    return words


def _integer_words(number: int) -> str:
    groups = []
    while number:
        groups.append(number % 10000)
        number //= 10000
    if len(groups) > len(_SECTIONS):
        raise ValueError('amount too large to write in words')
    words = ''
    for index in reversed(range(len(groups))):
        group = groups[index]
        if group == 0:
            continue
        # A zero is read between sections when digits are skipped: 100500 → 壹拾万零伍佰.
        if words and (group < 1000 or groups[index + 1] % 10 == 0):
            words += '零'
        words += _group_words(group) + _SECTIONS[index]
    return words


def yuan_in_words(amount: Decimal) -> str:
    """An amount in yuan as the uppercase words written on agreements and receipts.

    ``Decimal('120000.00')`` → ``壹拾贰万元整``; ``Decimal('100.05')`` → ``壹佰元零伍分``.

    :param amount: non-negative, at most two decimal places
    :raises ValueError: negative, or more than two places
    """
    cents = amount * 100
    if amount < 0 or cents != cents.to_integral_value():
        raise ValueError(f'not an amount in yuan and fen: {amount}')
    total = int(cents)
    yuan, jiao, fen = total // 100, total // 10 % 10, total % 10
    words = _integer_words(yuan) + '元' if yuan else ''
    if jiao == 0 and fen == 0:
        return (words or '零元') + '整'
    if yuan and jiao == 0:
        words += '零'
    if jiao:
        words += _DIGITS[jiao] + '角'
    if fen:
        words += _DIGITS[fen] + '分'
    return words
