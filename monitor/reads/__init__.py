"""Read models that join several domains, built above them so that the domains need not
import each other."""
