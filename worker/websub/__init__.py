"""WebSub push: subscriptions kept with hubs (maintain), and the callback hubs call (callback).

The decisions are pure (plan.py); the store (worker/store/push.py) is the only code that
touches the push_subscriptions table.
"""
