"""A small student network that finds LEADER's minutiae, distilled from LEADER (pyfing's) on prints it labels."""
