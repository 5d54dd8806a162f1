"""Campaigns: one prompt template over many products, planned, run (live or Batch) and reviewed.
"""

from rag.campaigns.batch import poll_forever
from rag.campaigns.plan import FIELDS, Plan, Progress, Runner, make_plan
from rag.campaigns.records import LEASE_S, Campaign, CampaignReview, CampaignStore, Item, approved_unsaved, lease_holder

__all__ = ["approved_unsaved", "Campaign", "CampaignReview", "CampaignStore", "FIELDS", "Item", "lease_holder", "LEASE_S", "make_plan", "Plan", "poll_forever", "Progress", "Runner"]
