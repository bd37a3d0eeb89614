"""htct.tables"""
