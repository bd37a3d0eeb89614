"""htct.train"""
