"""htct.models"""
