"""Small value classes for the verify path, without ``dataclasses``.

Importing ``dataclasses`` pulls in ``inspect``, ``ast``, ``dis`` and ``tokenize``,
and each ``@dataclass`` compiles its methods when its module loads: for the five
records of the verify path, about 9 ms of every ``rerun verify`` start, more than
the verify of a small bundle. Those records (the policy, the result, the signer)
derive from these bases instead and write their own ``__init__``; the bases give
them what ``@dataclass`` would: a readable ``repr``, equality by value, pattern
matching, what ``dataclasses.asdict`` and ``replace`` need, and for the frozen
kind, refusal of assignment, a hash, and pickling (batch verify sends results
between processes).
"""

from __future__ import annotations

from typing import Any, ClassVar


class Record:
    """Equality and ``repr`` over the names in ``_fields``, in that order.

    Mutable, so unhashable (defining ``__eq__`` sets ``__hash__`` to None), as a
    plain dataclass is.
    """

    __slots__ = ("__weakref__",)  # weak references work, as on a dataclass
    #: The attributes that make up the value: compared, shown, pickled.
    _fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # ``case SignerInfo(key, fingerprint):`` matches by position, as for a dataclass.
        cls.__match_args__ = cls._fields  # type: ignore[attr-defined,misc]

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Rebuilt by calling the class with the field values, in order."""
        return type(self), self._values()


class _DataclassFields:
    """``__dataclass_fields__``, made on first use from ``_fields``.

    The records were dataclasses (the published package's ``VerifyResult`` and
    ``KeyPair`` are), so callers may hand them to ``dataclasses.asdict``,
    ``fields``, ``replace`` or ``is_dataclass``. Those look this attribute up,
    and only then is ``dataclasses`` imported, to describe the fields; a verify,
    which never asks, never imports it.
    """

    def __init__(self) -> None:
        #: Each class's description, made once (never stored on the class: one made
        #: for a base would hide the descriptor from its subclasses).
        self._described: dict[type, dict[str, Any]] = {}

    def __get__(self, instance: object, owner: type[Record]) -> dict[str, Any]:
        fields = self._described.get(owner)
        if fields is None:
            import dataclasses

            described = dataclasses.make_dataclass(owner.__name__,
                                                   [(name, Any) for name in owner._fields])
            fields = self._described[owner] = described.__dataclass_fields__  # type: ignore[attr-defined]
        return fields


Record.__dataclass_fields__ = _DataclassFields()  # type: ignore[attr-defined]


class FrozenRecord(Record):
    """A ``Record`` that cannot be changed once built, and so can be hashed.

    ``__init__`` fills the fields in with ``_assign``; any later assignment
    raises ``dataclasses.FrozenInstanceError``, as a frozen dataclass's does
    (imported only then).
    """

    __slots__ = ()

    def _assign(self, *values: object) -> None:
        """Set every field, in ``_fields`` order: the one way ``__init__`` fills one in."""
        for name, value in zip(self._fields, values, strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        from dataclasses import FrozenInstanceError  # an AttributeError, as a frozen dataclass's

        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:
        return hash(self._values())
