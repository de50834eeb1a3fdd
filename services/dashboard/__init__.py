"""Analytics dashboard built on the funnel and session computations."""
