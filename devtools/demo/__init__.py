"""``streamrec demo``: the whole pipeline on one machine, and the data it replays."""
