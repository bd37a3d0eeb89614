"""htct.preprocess"""
