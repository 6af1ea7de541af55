"""Key rotation and revocation while a server runs: reload files into a verifier.

`Reloader` watches a keyring file and a revocation file. When one changes (its
modification time, size or inode), or on `check` with ``force=True`` (what
``signedws serve`` does on SIGHUP), it loads the file and assigns the result to
the verifier: ``verifier.keyring = ...`` (which drops the credential cache) or
``verifier.revocations = ...`` (SPEC.md §4.6: one assignment, atomic for
concurrent verifiers). A file that does not load is logged and the old state
kept. Replace files atomically (write, then rename) so a half-written file is
never read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

from ..config import load_keyring, load_revocations
from ..errors import KeyFormatError
from ..verifier import Verifier

__all__ = ["Reloader"]

logger = logging.getLogger("signedws.server")

_Signature = tuple[int, int, int] | None


def _signature(path: Path) -> _Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class Reloader:
    """Reloads ``verifier``'s keyring and revocation set from files.

    Args:
        verifier: the verifier to update.
        keyring: the keyring JSON file (`Keyring.from_dict`), or None.
        revocations: the revocation JSON file (`RevocationSet.from_dict`), or
            None.
        interval: seconds between checks in `run`.

    The files' current state is taken as already loaded: the first `check`
    reloads only files that changed since.
    """

    def __init__(
        self,
        verifier: Verifier,
        *,
        keyring: str | os.PathLike[str] | None = None,
        revocations: str | os.PathLike[str] | None = None,
        interval: float = 1.0,
    ) -> None:
        self.verifier = verifier
        self.interval = interval
        self._files: dict[str, Path] = {}
        if keyring is not None:
            self._files["keyring"] = Path(keyring)
        if revocations is not None:
            self._files["revocations"] = Path(revocations)
        self._seen = {what: _signature(path) for what, path in self._files.items()}
        #: Per file: successful reloads, failed ones, and when a check last
        #: found the file in force (unchanged, or reloaded), on `time.monotonic`.
        #: A file whose last reload failed is not in force until one succeeds.
        self.reloads = dict.fromkeys(self._files, 0)
        self.failures = dict.fromkeys(self._files, 0)
        now = time.monotonic()
        self.in_force: dict[str, float | None] = dict.fromkeys(self._files, now)

    def state(self, what: str) -> dict[str, int | bool]:
        """``what``'s counters for `signedws.metrics.Source`: reloads ok and
        failed, version (successful reloads) and size (entries in force)."""
        held = self.verifier.keyring if what == "keyring" else self.verifier.revocations
        return {
            "ok": self.reloads[what],
            "failed": self.failures[what],
            "version": self.reloads[what],
            "size": len(held),
        }

    def stale(self, what: str, now: float) -> str | None:
        """Why ``what`` is not fresh at ``now`` (`time.monotonic`), or None
        (`signedws.health.fresh`: checked within a few intervals)."""
        from ..health import fresh  # noqa: PLC0415

        last = self.in_force[what]
        if fresh(last, self.interval, now):
            return None
        if last is None:
            return f"the last reload of {self._files[what].name} failed"
        return f"{self._files[what].name} not checked for {now - last:.0f} s"

    def check(self, *, force: bool = False) -> list[str]:
        """Reload the files that changed (all of them with ``force``).

        Returns:
            What was reloaded: ``"keyring"``, ``"revocations"``.
        """
        reloaded = []
        for what, path in self._files.items():
            signature = _signature(path)
            if not force and signature == self._seen[what]:
                if self.in_force[what] is not None:
                    self.in_force[what] = time.monotonic()
                continue
            self._seen[what] = signature
            try:
                if what == "keyring":
                    keyring = load_keyring(path)
                    self.verifier.keyring = keyring
                    logger.info("reloaded keyring from %s: %r", path, keyring)
                else:
                    revocations = load_revocations(path)
                    self.verifier.revocations = revocations
                    logger.info("reloaded revocations from %s: %r", path, revocations)
            except KeyFormatError as exc:
                # An expected failure: its message says what is wrong; no traceback.
                logger.error("reload failed, keeping the %s in force: %s", what, exc)  # noqa: TRY400
                self.failures[what] += 1
                self.in_force[what] = None
                continue
            self.reloads[what] += 1
            self.in_force[what] = time.monotonic()
            reloaded.append(what)
        return reloaded

    async def run(self) -> None:
        """Check every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            self.check()

    def __repr__(self) -> str:
        files = ", ".join(f"{what}={str(path)!r}" for what, path in self._files.items())
        return f"Reloader({files}, interval={self.interval})"
