"""The chat itself: accounts online, rooms, membership, fan-out, the realm."""
