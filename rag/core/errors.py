"""The product's exceptions. Messages are written for the person using the app.

Only the UI turns these into ``gr.Error``/``gr.Warning`` and only the CLI into exit codes;
the library itself never prints or exits.
"""


class BananaError(Exception):
    """Base class: ``str(err)`` is a complete sentence a user can act on, in plain words (the app's pages show
    no setting names). ``setting`` names the setting that changes it, for the terminal, where the person
    reading is the one who sets it."""

    setting = ""

    def __init__(self, *args: object, setting: str = "") -> None:
        super().__init__(*args)
        if setting:
            self.setting = setting


class ConfigError(BananaError):
    """A setting is missing or malformed."""


class ModelLoadError(BananaError):
    """CLIP weights could not be loaded."""


class StoreError(BananaError):
    """The vector store refused an operation or is unreachable."""


class LibraryDamaged(StoreError):
    """The Milvus Lite database has missing or broken files; the message says how to restore it."""


class ImageError(BananaError):
    """A file is not an image we can read (corrupt, empty, too large, unsupported)."""


class GenerationError(BananaError):
    """Image generation failed; the library is untouched."""


class GenerationDisabled(GenerationError):
    """No API key is configured, so generation is off (search still works)."""

    setting = "GEMINI_API_KEY"


class GenerationBlocked(GenerationError):
    """The model refused the prompt or its output (safety, policy)."""


class GenerationTimeout(GenerationError):
    """The model did not answer within the configured timeout."""


class RateLimited(GenerationError):
    """The API kept answering 429 after our retries."""


class BudgetExceeded(GenerationError):
    """The request's estimated cost would pass GEMINI_DAILY_BUDGET_USD; nothing was sent."""

    setting = "GEMINI_DAILY_BUDGET_USD"


class TransferError(BananaError):
    """A library file cannot be exported or imported (wrong columns, wrong vector size, another model)."""


class ModelUnavailable(GenerationError):
    """A model Gemini no longer serves (shut down, not listed for this key, or answered 404).

    ``replacement`` is the model to use instead ("" when none is known), so a front end can offer it.
    """

    def __init__(self, message: str, model: str = "", replacement: str = "") -> None:
        super().__init__(message)
        self.model = model
        self.replacement = replacement


class NothingToDo(BananaError):
    """An action that found nothing to act on ("nothing new to save"): a sentence to show, not a failure."""
