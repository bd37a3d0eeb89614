"""htct.split"""
