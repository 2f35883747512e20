"""What a config may name, and the rules it is checked by: solvers and their settings (`solvers`), similarity
measures (`measures`), head modes (`heads`), model names (`naming`), and where an ImageNet folder keeps its parts
(`imagenet`). Pure Python, below `featswap.config`: the config and the parts above it read them here."""
