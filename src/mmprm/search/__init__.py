"""Test-time selection and search with a PRM: aggregation, BoN, voting, beam search."""
