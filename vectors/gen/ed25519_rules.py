"""ed25519_rules.json: the small-order encodings of SPEC.md §8.2 rule 4, computed."""

from __future__ import annotations

from typing import Final

from gen.common import Json, L, P, document, hx, le32

# -- ed25519_rules.json: small-order points, computed -------------------------------------------

D: Final = -121665 * pow(121666, P - 2, P) % P
SQRT_M1: Final = pow(2, (P - 1) // 4, P)

Point = tuple[int, int]


def _inv(x: int) -> int:
    return pow(x, P - 2, P)


def _add(a: Point, b: Point) -> Point:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return (x1 * y2 + x2 * y1) * _inv(1 + t) % P, (y1 * y2 + x1 * x2) * _inv(1 - t) % P


def _mul(k: int, point: Point) -> Point:
    result: Point = (0, 1)
    while k:
        if k & 1:
            result = _add(result, point)
        point = _add(point, point)
        k >>= 1
    return result


def _x_of(y: int) -> int | None:
    """An x with -x^2 + y^2 = 1 + d x^2 y^2, or None if y is on no point."""
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x2 = u * _inv(v) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    return x


def _order(point: Point) -> int:
    order, q = 1, point
    while q != (0, 1):
        q = _add(q, point)
        order += 1
        assert order <= 8  # noqa: S101
    return order


def small_order_encodings() -> list[tuple[bytes, int, bool, str]]:
    """Every 32-byte string that decodes, under a lenient decoder (y taken mod p,
    the sign bit honoured even for x = 0), to a point of order 1, 2, 4 or 8."""
    generator = None
    for y in range(2, 100):
        x = _x_of(y)
        if x is None:
            continue
        t = _mul(L, (x, y))  # clears the prime-order part: a torsion point
        if _order(t) == 8:
            generator = t
            break
    assert generator is not None  # noqa: S101
    torsion = [_mul(k, generator) for k in range(8)]
    found: list[tuple[bytes, int, bool, str]] = []
    for point in torsion:
        x, y = point
        for y_repr in (y, y + P):
            if y_repr >= 2**255:
                continue
            for sign in (0, 1):
                if x == 0 and sign == 1:
                    what = "x = 0 with the sign bit set"
                elif x != 0 and sign != x & 1:
                    continue  # that is the canonical encoding of (-x, y), also listed
                else:
                    what = "canonical" if y_repr == y else "y + p"
                canonical = y_repr == y and not (x == 0 and sign == 1)
                if y_repr != y and x == 0 and sign == 1:
                    what = "y + p and the sign bit set on x = 0"
                encoding = le32(y_repr | sign << 255)
                found.append((encoding, _order(point), canonical, what))
    found.sort(key=lambda item: (not item[2], item[1], item[0][::-1]))
    assert len(found) == 14 and sum(c for _, _, c, _ in found) == 8  # noqa: S101, PT018
    return found


def ed25519_rules_json() -> Json:
    cases = []
    for encoding, order, canonical, what in small_order_encodings():
        label = "canonical" if canonical else "noncanonical"
        cases.append(
            {
                "name": f"small_order_{order}_{label}_{encoding.hex()[:8]}_{encoding.hex()[-2:]}",
                "description": f"a point of order {order}: {what}",
                "encoding": hx(encoding),
                "order": order,
                "canonical": canonical,
            }
        )

    def constant(value: int, text: str) -> Json:
        return {"decimal": str(value), "le_hex": hx(le32(value)), "definition": text}

    return document(
        "§8.2: the 14 encodings that rule 4 refuses (points of order 1, 2, 4 or 8: 8 canonical "
        "encodings and 6 non-canonical aliases), and the constants L and p. Computed by "
        "curve arithmetic in generate.py, not copied.",
        cases,
        L=constant(L, "2^252 + 27742317777372353535851937790883648493"),
        p=constant(P, "2^255 - 19"),
    )
