"""`lakehouse chaos`: kill -9 one component at a time under a steady load, then prove nothing was lost."""
