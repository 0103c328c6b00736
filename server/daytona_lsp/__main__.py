from daytona_lsp.cli import main

raise SystemExit(main())
