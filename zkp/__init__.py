"""Zero knowledge: confidential copyright transfers verified by the ledger (to come)."""
