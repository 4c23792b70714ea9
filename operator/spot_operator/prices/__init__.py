"""Pure price-history logic: the vocabulary of sources and methods, cleaning and gap filling, savings.

Nothing here touches a database, a clock or the network; :mod:`spot_operator.storage` loads and saves.
"""
