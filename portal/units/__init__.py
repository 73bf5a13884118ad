"""Business units: the company tree and which plugins each unit has on (CORE-02)."""
