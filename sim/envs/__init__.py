"""The arm environment and its four tasks (reach, push, lift, insertion)."""
