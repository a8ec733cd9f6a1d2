"""The generative critic (GM-PRM): the critique format (`critique`), teachers that
write critiques (`teacher`) and the MC-agreement filter on them (`filter`)."""
