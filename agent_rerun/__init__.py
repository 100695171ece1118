"""agent-rerun: make one LLM step reproducible and attributable.

``capture`` turns a step record into a signed rerun.json v0.1 bundle and
``verify`` checks a replay against it in pure software. Importing this package
loads no signing backend, keyring or PKCS#11 module, and scans no plugins.
"""

import sys
import types
from typing import TYPE_CHECKING, Any

from agent_rerun._version import __version__
from agent_rerun.canonical import jcs_bytes, sha256_hex, sha256_of_jcs
from agent_rerun.errors import InputError, RerunError, SignerError, ValidationError
from agent_rerun.schema import (
    ActualRecord,
    Bundle,
    Signature,
    StepRecord,
    ToleranceLevel,
    validate_actual_record,
    validate_bundle,
    validate_step_record,
)
from agent_rerun.signature import KeyPair, generate_key_pair
from agent_rerun.verify import (
    SignerInfo,
    VerifyResult,
    verify,
    verify_bundle_signature,
    verify_files,
)

if TYPE_CHECKING:
    from agent_rerun.capture import CaptureOptions, capture, sign_bundle
    from agent_rerun.embedding import cosine, decode_embedding, encode_embedding
    from agent_rerun.signer import (
        InMemorySigner,
        KeyInfo,
        Signer,
        SignerBase,
        generate_key,
        installed_schemes,
        list_keys,
        load_signer,
    )

#: Names loaded on first use: verifying needs neither capture, nor the embedding
#: codec (for byte bundles), nor the signer registry, and ``rerun verify`` is
#: started once per bundle in many CI jobs (tests/test_purity.py pins what it
#: loads). No submodule shares one of these names (``capture``: see ``_Package``).
_LAZY = {
    **dict.fromkeys(["CaptureOptions", "sign_bundle"], "agent_rerun.capture"),
    **dict.fromkeys(["cosine", "decode_embedding", "encode_embedding"], "agent_rerun.embedding"),
    **dict.fromkeys(
        ["InMemorySigner", "KeyInfo", "Signer", "SignerBase", "generate_key",
         "installed_schemes", "list_keys", "load_signer"],
        "agent_rerun.signer",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agent_rerun' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)


class _Package(types.ModuleType):
    """This package's module type: ``agent_rerun.capture`` stays the function.

    Importing the submodule ``agent_rerun.capture`` (the CLI does) makes the
    import system bind the module to the package's ``capture``; this property
    ignores that, so ``from agent_rerun import capture`` is the function
    whatever was imported first, as it was when the import was eager.
    """

    @property
    def capture(self) -> Any:
        from agent_rerun.capture import capture

        return capture

    @capture.setter
    def capture(self, value: Any) -> None:
        pass


sys.modules[__name__].__class__ = _Package


__all__ = [
    "ActualRecord",
    "Bundle",
    "CaptureOptions",
    "InMemorySigner",
    "InputError",
    "KeyInfo",
    "KeyPair",
    "RerunError",
    "Signature",
    "Signer",
    "SignerBase",
    "SignerError",
    "SignerInfo",
    "StepRecord",
    "ToleranceLevel",
    "ValidationError",
    "VerifyResult",
    "__version__",
    "capture",
    "cosine",
    "decode_embedding",
    "encode_embedding",
    "generate_key",
    "generate_key_pair",
    "installed_schemes",
    "jcs_bytes",
    "list_keys",
    "load_signer",
    "sha256_hex",
    "sha256_of_jcs",
    "sign_bundle",
    "validate_actual_record",
    "validate_bundle",
    "validate_step_record",
    "verify",
    "verify_bundle_signature",
    "verify_files",
]
