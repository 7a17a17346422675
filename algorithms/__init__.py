"""Learning rules, one file each; every module registers its rule with ``@register_algorithm``."""
