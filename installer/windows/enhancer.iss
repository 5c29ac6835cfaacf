; Inno Setup 6 script for Photo Enhancer: a per-user install that needs no administrator rights.
; installer/build.py compiles it with the values below; by hand:
;   iscc /DAppVersion=0.1.0 /DSourceDir=dist\photo-enhancer /DOutputDir=dist /DIconFile=build\icons\enhancer.ico installer\windows\enhancer.iss

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=X.Y.Z (build.py reads it from pyproject.toml)
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\photo-enhancer"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif
#ifndef IconFile
  #define IconFile "..\..\build\icons\enhancer.ico"
#endif

#define AppName "Photo Enhancer"
#define AppExe "enhancer-gui.exe"

[Setup]
; A fixed AppId ties upgrades and the uninstaller to this app; never change it.
AppId={{6F1C2B7E-4A0D-4E8B-9C1E-53A8D2F0B7C4}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=Photo Enhancer contributors
VersionInfoVersion={#AppVersion}
; Per user, no UAC prompt: {autopf} becomes %LOCALAPPDATA%\Programs, {autoprograms} the user's Start menu.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#OutputDir}
OutputBaseFilename=PhotoEnhancer-{#AppVersion}-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
WizardStyle=modern
Compression=lzma2/max
SolidCompression=yes
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{userdocs}"
Name: "{autoprograms}\Uninstall {#AppName}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{userdocs}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Byte-code caches Python may write next to the bundle; the user's models and settings live elsewhere and are kept.
Type: filesandordirs; Name: "{app}\_internal\__pycache__"
