"""htct.figures"""
