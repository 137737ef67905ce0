"""Privacy computing: Paillier and MPC aggregate queries across agencies (to come)."""
