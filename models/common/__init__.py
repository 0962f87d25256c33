"""What every layer uses: errors, files, folders, images, the machine, CLI helpers, the extras.

No torch and no heavy import: the live product's core install runs on these.
"""
