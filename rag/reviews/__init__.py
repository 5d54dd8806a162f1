"""Review links: a campaign, a session or chosen images shown to people outside the team through a link that
expires, may need a password and may take their approvals and comments; its records and its secrets.
"""

from rag.reviews.store import KINDS, MAX_NOTES, VERDICTS, ReviewLink, ReviewNote, ReviewStore, SharedItem
from rag.reviews.tokens import (
    MAX_PASSWORD,
    NOT_VALID,
    LinkNotValid,
    check_password,
    hash_password,
    new_token,
    token_hash,
    well_formed,
)

__all__ = ["check_password", "hash_password", "KINDS", "LinkNotValid", "MAX_NOTES", "MAX_PASSWORD", "new_token", "NOT_VALID", "ReviewLink", "ReviewNote", "ReviewStore", "SharedItem", "token_hash", "VERDICTS", "well_formed"]
