"""Wire clients for the services a tenant connects: Saleor, Google Ads, Meta, LinkedIn, Amazon.

Tools (reads) and action executors (writes) both call these; neither speaks HTTP itself.
"""
